"""Declarative attribute maps: what each resource accepts, shows and filters.

The v2.0 compatibility spec of the core's resources in one place; the
record (:class:`~netplex.core.attr_map.Attr`) and the converters are the data
half in :mod:`netplex.core.attr_map`, shared with service plugins. Who may
set or see an attribute is policy (:mod:`netplex.api.policy`), not part of
the map. :func:`validate_body` turns a converter's :class:`ValueError` into
a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netplex.core.attr_map import (
    REQUIRED,
    Attr,
    dict_or_none,
    host_id,
    ip_or_none,
    list_of,
    mac_address,
    mtu,
    one_of,
    shown,
    string,
    to_bool,
    to_int,
    uuid_or_none,
    uuid_str,
)
from netplex.core.mech_api import VNIC_TYPES
from netplex.errors import (
    AllowedAddressPairExhausted,
    BadRequest,
    DNSNameServersExhausted,
    HostRoutesExhausted,
    NetplexError,
)


class HTTPBadRequest(BadRequest):
    """A malformed request (Neutron reports these with type ``HTTPBadRequest``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


# -- the maps -----------------------------------------------------------------

_PROJECT = {
    "project_id": Attr(allow_post=True, convert=string(255), default=REQUIRED),
    "tenant_id": Attr(allow_post=True, convert=string(255), default=REQUIRED),
}

_STANDARD = {
    "id": Attr(convert=uuid_str, filter_convert=str),
    "description": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "revision_number": Attr(filter_convert=to_int),
    "created_at": Attr(is_filter=False),
    "updated_at": Attr(is_filter=False),
    "tags": Attr(is_filter=False),
}

NETWORK: dict[str, Attr] = {
    **_STANDARD,
    **_PROJECT,
    "name": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "admin_state_up": Attr(allow_post=True, allow_put=True, default=True, convert=to_bool),
    "status": Attr(filter_convert=str),
    "shared": Attr(allow_post=True, allow_put=True, default=False, convert=to_bool),
    "router:external": Attr(allow_post=True, allow_put=True, default=False, convert=to_bool),
    "mtu": Attr(allow_post=True, allow_put=True, default=None, convert=mtu),
    "subnets": Attr(filter_convert=str),
    "availability_zone_hints": Attr(allow_post=True, default=[], convert=list_of(string(255)), is_filter=False),
    "availability_zones": Attr(is_filter=False),
    "ipv4_address_scope": Attr(is_filter=False),
    "ipv6_address_scope": Attr(is_filter=False),
    "l2_adjacency": Attr(is_filter=False),
    "provider:network_type": Attr(
        allow_post=True,
        default=None,
        convert=string(32, nullable=True),
        filter_convert=str,
    ),
    "provider:physical_network": Attr(
        allow_post=True,
        default=None,
        convert=string(64, nullable=True),
        filter_convert=str,
    ),
    "provider:segmentation_id": Attr(
        allow_post=True,
        default=None,
        convert=lambda v: None if v is None else to_int(v),
        filter_convert=to_int,
    ),
    "segments": Attr(
        allow_post=True,
        default=None,
        convert=lambda v: None if v is None else list_of(dict_or_none)(v),
        is_filter=False,
    ),
}

SUBNET: dict[str, Attr] = {
    **_STANDARD,
    **_PROJECT,
    "name": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "network_id": Attr(allow_post=True, default=REQUIRED, convert=uuid_str, filter_convert=str),
    "ip_version": Attr(allow_post=True, default=REQUIRED, convert=lambda v: one_of(4, 6)(to_int(v))),
    "cidr": Attr(allow_post=True, default=None, convert=string(64, nullable=True), filter_convert=str),
    "gateway_ip": Attr(allow_post=True, allow_put=True, default=REQUIRED, convert=ip_or_none),
    "allocation_pools": Attr(
        allow_post=True,
        allow_put=True,
        default=None,
        convert=lambda v: None if v is None else list_of()(v),
        is_filter=False,
    ),
    "dns_nameservers": Attr(
        allow_post=True,
        allow_put=True,
        default=[],
        convert=list_of(
            limit="max_dns_nameservers",
            too_many=lambda cap: DNSNameServersExhausted(subnet_id="new subnet", quota=cap),
        ),
        is_filter=False,
    ),
    "host_routes": Attr(
        allow_post=True,
        allow_put=True,
        default=[],
        convert=list_of(
            limit="max_subnet_host_routes",
            too_many=lambda cap: HostRoutesExhausted(subnet_id="new subnet", quota=cap),
        ),
        is_filter=False,
    ),
    "enable_dhcp": Attr(allow_post=True, allow_put=True, default=True, convert=to_bool),
    "ipv6_ra_mode": Attr(
        allow_post=True, default=None, convert=one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless", nullable=True)
    ),
    "ipv6_address_mode": Attr(
        allow_post=True, default=None, convert=one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless", nullable=True)
    ),
    "subnetpool_id": Attr(allow_post=True, default=None, convert=one_of(None, nullable=True)),
    "segment_id": Attr(allow_post=True, allow_put=True, default=None, convert=uuid_or_none),
    "service_types": Attr(is_filter=False),
}

PORT: dict[str, Attr] = {
    **_STANDARD,
    **_PROJECT,
    "name": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "network_id": Attr(allow_post=True, default=REQUIRED, convert=uuid_str, filter_convert=str),
    "admin_state_up": Attr(allow_post=True, allow_put=True, default=True, convert=to_bool),
    "mac_address": Attr(allow_post=True, allow_put=True, default=None, convert=mac_address, filter_convert=str),
    "fixed_ips": Attr(allow_post=True, allow_put=True, default=None, convert=list_of(), filter_convert=str),
    "device_id": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "device_owner": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "status": Attr(filter_convert=str),
    "allowed_address_pairs": Attr(
        allow_post=True,
        allow_put=True,
        default=[],
        convert=list_of(
            limit="max_allowed_address_pair",
            too_many=lambda cap: AllowedAddressPairExhausted(quota=cap),
        ),
        is_filter=False,
    ),
    "binding:host_id": Attr(allow_post=True, allow_put=True, default=None, convert=host_id, filter_convert=str),
    "binding:vnic_type": Attr(
        allow_post=True, allow_put=True, default="normal", convert=one_of(*VNIC_TYPES), filter_convert=str
    ),
    "binding:profile": Attr(allow_post=True, allow_put=True, default=None, convert=dict_or_none, is_filter=False),
    "binding:vif_type": Attr(filter_convert=str),
    "binding:vif_details": Attr(is_filter=False),
    "binding:diagnostics": Attr(is_filter=False),
}

SEGMENT: dict[str, Attr] = {
    "id": Attr(convert=uuid_str, filter_convert=str),
    "network_id": Attr(allow_post=True, default=REQUIRED, convert=uuid_str, filter_convert=str),
    "network_type": Attr(allow_post=True, default=REQUIRED, convert=string(32), filter_convert=str),
    "physical_network": Attr(allow_post=True, default=None, convert=string(64, nullable=True), filter_convert=str),
    "segmentation_id": Attr(
        allow_post=True, default=None, convert=lambda v: None if v is None else to_int(v), filter_convert=to_int
    ),
    "name": Attr(allow_post=True, allow_put=True, default=None, convert=string(255, nullable=True)),
    "description": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "revision_number": Attr(filter_convert=to_int),
    "created_at": Attr(is_filter=False),
    "updated_at": Attr(is_filter=False),
}

AGENT: dict[str, Attr] = {
    "id": Attr(filter_convert=str),
    "agent_type": Attr(filter_convert=str),
    "binary": Attr(filter_convert=str),
    "topic": Attr(filter_convert=str),
    "host": Attr(filter_convert=str),
    "admin_state_up": Attr(allow_put=True, convert=to_bool),
    "description": Attr(allow_put=True, convert=string(255, nullable=True)),
    "alive": Attr(filter_convert=to_bool),
    "availability_zone": Attr(filter_convert=str),
    "heartbeat_timestamp": Attr(is_filter=False),
    "started_at": Attr(is_filter=False),
    "created_at": Attr(is_filter=False),
    "configurations": Attr(is_filter=False),
    "resources_synced": Attr(is_filter=False),
}

#: Keys that never appear in a body but are valid list filters.
EXTRA_FILTERS = {
    "networks": {"tags", "tags-any", "not-tags", "not-tags-any"},
    "subnets": {"tags", "tags-any", "not-tags", "not-tags-any"},
    "ports": {"tags", "tags-any", "not-tags", "not-tags-any"},
}


def validate_body(
    attrs: Mapping[str, Attr],
    body: Any,
    *,
    resource: str,
    for_create: bool,
) -> dict[str, Any]:
    """Check one resource body: unknown keys, read-only keys, types; fill defaults on create.

    Only keys the caller sent (plus, on create, required ones) are returned;
    defaults are filled by the services so they can tell "not given" apart.
    """
    if not isinstance(body, dict):
        raise HTTPBadRequest(f"Body of '{resource}' must be an object")
    unknown = sorted(k for k in body if k not in attrs)
    if unknown:
        raise HTTPBadRequest(f"Unrecognized attribute(s) '{shown(', '.join(unknown))}'")
    out: dict[str, Any] = {}
    for key, value in body.items():
        spec = attrs[key]
        if for_create and not spec.allow_post:
            raise HTTPBadRequest(f"Attribute '{key}' not allowed in POST")
        if not for_create and not spec.allow_put:
            raise HTTPBadRequest(f"Cannot update read-only attribute {key}")
        try:
            out[key] = spec.convert(value) if spec.convert else value
        except ValueError as exc:
            raise HTTPBadRequest(f"Invalid input for {key}. Reason: {exc}.") from None
    if for_create:
        for key, spec in attrs.items():
            if spec.allow_post and spec.default is REQUIRED and key not in out:
                if key in ("project_id", "tenant_id"):
                    continue
                if key == "gateway_ip":
                    continue  # absent means "pick the default", null means "none"
                raise HTTPBadRequest(f"Failed to parse request. Required attribute '{key}' not specified")
    return out


def convert_filter(attrs: Mapping[str, Attr], key: str, raw: str) -> Any:
    spec = attrs[key]
    conv = spec.filter_convert or spec.convert
    if raw == "" and key not in ("name", "description", "device_id", "device_owner"):
        return None
    try:
        return conv(raw) if conv else raw
    except ValueError as exc:
        raise HTTPBadRequest(f"Invalid filter value for {shown(key)}: {exc}") from None


__all__ = [
    "Attr",
    "HTTPBadRequest",
    "NETWORK",
    "NetplexError",
    "PORT",
    "REQUIRED",
    "SUBNET",
    "convert_filter",
    "validate_body",
]
