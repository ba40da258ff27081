"""The policy defaults: Neutron's rule names with Neutron's legacy check strings.

Neutron (Wallaby and later) ships two check strings per rule: new defaults that
read the ``member``/``reader`` roles and Keystone scopes, and the legacy ones
they deprecate. Netplex's callers (``auth_strategy = noauth``: ``X-Project-Id``
and ``X-Roles``) carry no scope, so the legacy strings are the defaults here;
an operator's ``policy.yaml`` may replace any of them (docs/policy.md).

Rules marked "Netplex" have no Neutron counterpart (Netplex-only attributes
and endpoints); all others carry Neutron's name and legacy default.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULTS", "RuleDefault"]


@dataclass(frozen=True)
class RuleDefault:
    name: str
    check_str: str
    description: str


ADMIN_ONLY = "rule:admin_only"
ADMIN_OR_OWNER = "rule:admin_or_owner"
ADMIN_OR_NET_OWNER = "rule:admin_or_network_owner"
ADVSVC = "rule:context_is_advsvc"
ANY = "rule:regular_user"


def _r(name: str, check_str: str, description: str) -> RuleDefault:
    return RuleDefault(name, check_str, description)


DEFAULTS: tuple[RuleDefault, ...] = (
    # -- base rules ------------------------------------------------------------
    _r("context_is_admin", "role:admin", "Rule for cloud admin access"),
    _r("owner", "tenant_id:%(tenant_id)s", "Rule for resource owner access"),
    _r("admin_or_owner", "rule:context_is_admin or rule:owner", "Rule for admin or owner access"),
    _r("context_is_advsvc", "role:advsvc", "Rule for advsvc role access"),
    _r(
        "admin_or_network_owner",
        "rule:context_is_admin or tenant_id:%(network:tenant_id)s",
        "Rule for admin or network owner access",
    ),
    _r(
        "admin_owner_or_network_owner",
        "rule:owner or rule:admin_or_network_owner",
        "Rule for resource owner, admin or network owner access",
    ),
    _r("network_owner", "tenant_id:%(network:tenant_id)s", "Rule for network owner access"),
    _r("admin_only", "rule:context_is_admin", "Rule for admin-only access"),
    _r("regular_user", "", "Rule for regular user access"),
    _r("shared", "field:networks:shared=True", "Rule of shared network"),
    _r("external", "field:networks:router:external=True", "Definition of an external network"),
    _r("default", "rule:admin_or_owner", "Default access rule (for actions without a rule of their own)"),
    _r("network_device", "field:port:device_owner=~^network:", "Rule of port with network device_owner"),
    # -- networks --------------------------------------------------------------
    _r("create_network", ANY, "Create a network"),
    _r("create_network:shared", ADMIN_ONLY, "Create a shared network"),
    _r("create_network:router:external", ADMIN_ONLY, "Create an external network"),
    _r("create_network:is_default", ADMIN_ONLY, "Specify is_default when creating a network"),
    _r("create_network:segments", ADMIN_ONLY, "Specify segments when creating a network"),
    _r("create_network:provider:network_type", ADMIN_ONLY, "Specify provider:network_type"),
    _r("create_network:provider:physical_network", ADMIN_ONLY, "Specify provider:physical_network"),
    _r("create_network:provider:segmentation_id", ADMIN_ONLY, "Specify provider:segmentation_id"),
    _r(
        "get_network",
        f"{ADMIN_OR_OWNER} or rule:shared or rule:external or {ADVSVC}",
        "Get a network",
    ),
    _r("get_network:router:external", ANY, "Get router:external of a network"),
    _r("get_network:segments", ADMIN_ONLY, "Get segments of a network"),
    _r("get_network:provider:network_type", ADMIN_ONLY, "Get provider:network_type of a network"),
    _r("get_network:provider:physical_network", ADMIN_ONLY, "Get provider:physical_network of a network"),
    _r("get_network:provider:segmentation_id", ADMIN_ONLY, "Get provider:segmentation_id of a network"),
    _r("update_network", ADMIN_OR_OWNER, "Update a network"),
    _r("update_network:segments", ADMIN_ONLY, "Update segments of a network"),
    _r("update_network:shared", ADMIN_ONLY, "Update shared of a network"),
    _r("update_network:provider:network_type", ADMIN_ONLY, "Update provider:network_type of a network"),
    _r("update_network:provider:physical_network", ADMIN_ONLY, "Update provider:physical_network of a network"),
    _r("update_network:provider:segmentation_id", ADMIN_ONLY, "Update provider:segmentation_id of a network"),
    _r("update_network:router:external", ADMIN_ONLY, "Update router:external of a network"),
    _r("update_network:is_default", ADMIN_ONLY, "Update is_default of a network"),
    _r("delete_network", ADMIN_OR_OWNER, "Delete a network"),
    # -- subnets ---------------------------------------------------------------
    _r("create_subnet", ADMIN_OR_NET_OWNER, "Create a subnet"),
    _r("create_subnet:segment_id", ADMIN_ONLY, "Specify segment_id when creating a subnet"),
    _r("create_subnet:service_types", ADMIN_ONLY, "Specify service_types when creating a subnet"),
    _r("get_subnet", f"{ADMIN_OR_OWNER} or rule:shared", "Get a subnet"),
    _r("get_subnet:segment_id", ADMIN_ONLY, "Get segment_id of a subnet"),
    _r("update_subnet", ADMIN_OR_NET_OWNER, "Update a subnet"),
    _r("update_subnet:segment_id", ADMIN_ONLY, "Update segment_id of a subnet"),
    _r("update_subnet:service_types", ADMIN_ONLY, "Update service_types of a subnet"),
    _r("delete_subnet", ADMIN_OR_NET_OWNER, "Delete a subnet"),
    # -- ports -----------------------------------------------------------------
    _r("create_port", ANY, "Create a port"),
    _r(
        "create_port:device_owner",
        f"not rule:network_device or {ADVSVC} or {ADMIN_OR_NET_OWNER}",
        "Specify device_owner when creating a port",
    ),
    _r("create_port:mac_address", f"{ADVSVC} or {ADMIN_OR_NET_OWNER}", "Specify mac_address when creating a port"),
    _r(
        "create_port:fixed_ips",
        f"{ADVSVC} or {ADMIN_OR_NET_OWNER} or rule:shared",
        "Specify fixed_ips when creating a port",
    ),
    _r(
        "create_port:fixed_ips:ip_address",
        f"{ADVSVC} or {ADMIN_OR_NET_OWNER}",
        "Specify an IP address in fixed_ips when creating a port",
    ),
    _r(
        "create_port:fixed_ips:subnet_id",
        f"{ADVSVC} or {ADMIN_OR_NET_OWNER} or rule:shared",
        "Specify a subnet in fixed_ips when creating a port",
    ),
    _r(
        "create_port:port_security_enabled",
        f"{ADVSVC} or {ADMIN_OR_NET_OWNER}",
        "Specify port_security_enabled when creating a port",
    ),
    _r("create_port:binding:host_id", ADMIN_ONLY, "Specify binding:host_id when creating a port"),
    _r("create_port:binding:profile", ADMIN_ONLY, "Specify binding:profile when creating a port"),
    _r("create_port:binding:vnic_type", ANY, "Specify binding:vnic_type when creating a port"),
    _r(
        "create_port:allowed_address_pairs",
        ADMIN_OR_NET_OWNER,
        "Specify allowed_address_pairs when creating a port",
    ),
    _r("get_port", f"{ADVSVC} or rule:admin_owner_or_network_owner", "Get a port"),
    _r("get_port:binding:vif_type", ADMIN_ONLY, "Get binding:vif_type of a port"),
    _r("get_port:binding:vif_details", ADMIN_ONLY, "Get binding:vif_details of a port"),
    _r("get_port:binding:host_id", ADMIN_ONLY, "Get binding:host_id of a port"),
    _r("get_port:binding:profile", ADMIN_ONLY, "Get binding:profile of a port"),
    _r("get_port:binding:diagnostics", ADMIN_ONLY, "Netplex: why a port is (not) bound"),
    _r("get_port:resource_request", ADMIN_ONLY, "Get resource_request of a port"),
    _r("update_port", f"{ADMIN_OR_OWNER} or {ADVSVC}", "Update a port"),
    _r(
        "update_port:device_owner",
        f"not rule:network_device or {ADVSVC} or {ADMIN_OR_NET_OWNER}",
        "Update device_owner of a port",
    ),
    _r("update_port:mac_address", f"{ADMIN_ONLY} or {ADVSVC}", "Update mac_address of a port"),
    _r("update_port:fixed_ips", f"{ADVSVC} or {ADMIN_OR_NET_OWNER}", "Update fixed_ips of a port"),
    _r(
        "update_port:fixed_ips:ip_address",
        f"{ADVSVC} or {ADMIN_OR_NET_OWNER}",
        "Update a port specifying an IP address in fixed_ips",
    ),
    _r(
        "update_port:fixed_ips:subnet_id",
        f"{ADVSVC} or {ADMIN_OR_NET_OWNER} or rule:shared",
        "Update a port specifying a subnet in fixed_ips",
    ),
    _r(
        "update_port:port_security_enabled",
        f"{ADVSVC} or {ADMIN_OR_NET_OWNER}",
        "Update port_security_enabled of a port",
    ),
    _r("update_port:binding:host_id", ADMIN_ONLY, "Update binding:host_id of a port"),
    _r("update_port:binding:profile", ADMIN_ONLY, "Update binding:profile of a port"),
    _r("update_port:binding:vnic_type", f"{ADMIN_OR_OWNER} or {ADVSVC}", "Update binding:vnic_type of a port"),
    _r("update_port:allowed_address_pairs", ADMIN_OR_NET_OWNER, "Update allowed_address_pairs of a port"),
    _r("update_port:status", f"{ADMIN_ONLY} or role:agent", "Netplex: set a port's status"),
    _r("delete_port", f"{ADVSVC} or rule:admin_owner_or_network_owner", "Delete a port"),
    # -- port bindings (binding-extended) ----------------------------------------
    _r("get_port_binding", ADMIN_ONLY, "Get port bindings"),
    _r("create_port_binding", ADMIN_ONLY, "Create a port binding"),
    _r("delete_port_binding", ADMIN_ONLY, "Delete a port binding"),
    _r("activate", ADMIN_ONLY, "Activate a port binding"),
    # -- tags -------------------------------------------------------------------
    *(
        _r(f"{verb}_{plural}_tags", ADMIN_OR_OWNER, f"{verb.capitalize()} the tags of {plural}")
        for plural in ("networks", "subnets", "ports")
        for verb in ("create", "update", "delete")
    ),
    # -- segments and agents ----------------------------------------------------------
    _r("create_segment", ADMIN_ONLY, "Create a segment"),
    _r("get_segment", ADMIN_ONLY, "Get a segment"),
    _r("update_segment", ADMIN_ONLY, "Update a segment"),
    _r("delete_segment", ADMIN_ONLY, "Delete a segment"),
    _r("get_agent", ADMIN_ONLY, "Get an agent"),
    _r("update_agent", ADMIN_ONLY, "Update an agent"),
    _r("delete_agent", ADMIN_ONLY, "Delete an agent"),
    # -- Netplex agent and diagnostics endpoints ------------------------------------------
    _r("report_agent_state", ADMIN_ONLY, "Netplex: an agent registers and heartbeats"),
    _r("get_host_state", ADMIN_ONLY, "Netplex: an agent reads its host's desired state"),
    _r("update_device_status", ADMIN_ONLY, "Netplex: an agent reports devices up/down"),
    _r("explain_binding", ADMIN_ONLY, "Netplex: why a port is (not) bound"),
    _r("get_changes", ADMIN_ONLY, "Netplex: read the change feed"),
)
