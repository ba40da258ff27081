"""Configuration: Neutron-style INI files parsed once, at the edge, into typed values.

Section and option names follow Neutron's ``neutron.conf`` and ``ml2_conf.ini``
wherever an equivalent exists, so an operator's existing file keeps working.
Every option is declared in :data:`SCHEMA`; options a file sets that nobody
declared are collected in :attr:`Config.unknown` and reported by the caller
(they are never silently dropped). Third-party drivers declare their own
options through the ``netplex.config_options`` entry-point group (see
:func:`plugin_options`), so their sections are checked like Netplex's. A value that does not parse raises
:class:`ConfigError` naming the section, the option and the bad value.

Nothing here reads global state after :func:`load` returns: the resulting
:class:`Config` is passed explicitly to whoever needs it.
"""

from __future__ import annotations

import configparser
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ACCEPTED",
    "OPTIONS_ENTRY_POINT_GROUP",
    "Config",
    "ConfigError",
    "Opt",
    "SCHEMA",
    "load",
    "parse_bool",
    "parse_list",
    "register_options",
]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names option and value."""


def parse_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def parse_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is outside 0..65535")
    return port


def parse_positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise ValueError(f"expected an integer >= 1, got {n}")
    return n


def parse_nonnegative_int(value: str) -> int:
    n = int(value)
    if n < 0:
        raise ValueError(f"expected an integer >= 0, got {n}")
    return n


def parse_mac_template(value: str) -> str:
    parts = value.strip().lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"expected six colon-separated hex octets, got {value!r}")
    for p in parts:
        int(p, 16)
    if int(parts[0], 16) & 1:
        raise ValueError(f"base_mac {value!r} is a multicast address")
    return ":".join(parts)


def parse_choice(*choices: str) -> Callable[[str], str]:
    def _parse(value: str) -> str:
        v = value.strip()
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {v!r}")
        return v

    return _parse


def parse_dict_list(value: str) -> dict[str, str]:
    """``physnet1:br-eth1,physnet2:br-eth2`` -> ``{"physnet1": "br-eth1", ...}``."""
    out: dict[str, str] = {}
    for item in parse_list(value):
        key, sep, val = item.partition(":")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"expected key:value pairs, got {item!r}")
        if key.strip() in out:
            raise ValueError(f"key {key.strip()!r} given twice")
        out[key.strip()] = val.strip()
    return out


def default_state_path() -> str:
    base = os.environ.get("NETPLEX_STATE_PATH")
    if base:
        return base
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(xdg, "netplex")


@dataclass(frozen=True)
class Opt:
    """One declared option: its parser, default (already typed) and help text."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    aliases: tuple[str, ...] = ()
    #: Non-empty: the option is read (a bad value still fails) but changes nothing; a file that
    #: sets it gets one start-up line "accepted, no effect because <no_effect>".
    no_effect: str = ""


def _opts(*opts: Opt) -> dict[str, Opt]:
    return {o.name: o for o in opts}


#: Every option Netplex understands, by section. Drivers shipped later add
#: their sections here so that unknown-option reporting stays exact.
SCHEMA: dict[str, dict[str, Opt]] = {
    "DEFAULT": _opts(
        Opt("bind_host", str, "127.0.0.1", "Address the API server listens on."),
        Opt("bind_port", parse_port, 9696, "Port the API server listens on."),
        Opt("api_workers", parse_nonnegative_int, 0,
            "Number of API server processes (0: one per CPU, as Neutron defaults to)."),
        Opt("base_mac", parse_mac_template, "fa:16:3e:00:00:00", "MAC template; octets that are 00 are randomised."),
        Opt("mac_generation_retries", parse_positive_int, 16,
            "Accepted for Neutron files; unused: a random MAC that clashes is retried with the "
            "transaction ([database] max_retries).",
            no_effect="a clashing random MAC is retried with the transaction ([database] max_retries)"),
        Opt("max_fixed_ips_per_port", parse_positive_int, 5, "Upper bound on fixed_ips per port."),
        Opt(
            "auth_strategy",
            parse_choice("noauth", "keystone"),
            "noauth",
            "noauth: X-Project-Id / X-Roles headers give the caller; no headers means an admin of "
            "project fake_project_id (as Neutron). keystone is accepted but NOT enforced yet: the "
            "server says so at start-up and serves as noauth.",
        ),
        Opt("state_path", str, "", "Data directory (SQLite file lives here)."),
        Opt("host", str, "", "This machine's host id (defaults to the hostname)."),
        Opt("global_physnet_mtu", parse_positive_int, 1500, "MTU of the underlying physical network."),
        Opt(
            "agent_down_time",
            parse_positive_int,
            75,
            "Seconds without a heartbeat after which an agent is considered dead.",
        ),
        Opt("agent_auth_token", str, "", "Shared secret agents present as X-Agent-Token; empty disables the check."),
        Opt("debug", parse_bool, False, "Log at DEBUG level."),
        Opt("core_plugin", str, "ml2", "Accepted for compatibility; only ml2 exists.",
            no_effect="ml2 is the only core plugin"),
        Opt("service_plugins", parse_list, [],
            "Service plugins by entry-point name (see docs/service-plugins.md)."),
        Opt("allow_overlapping_ips", parse_bool, True, "Accepted for compatibility; always on.",
            no_effect="overlapping IPs across networks are always allowed"),
        Opt("pagination_max_limit", str, "-1", "Largest page size (-1: unlimited)."),
        Opt(
            "feed_retention",
            parse_positive_int,
            100000,
            "How many change-feed entries to keep before compacting older ones.",
        ),
    ),
    "database": _opts(
        Opt("connection", str, "", "SQLAlchemy URL; empty means an SQLite file under state_path."),
        Opt("max_retries", parse_nonnegative_int, 10, "Retries of a transaction that hit a serialization conflict."),
    ),
    "ml2": _opts(
        Opt(
            "type_drivers",
            parse_list,
            ["local", "flat", "vlan", "vxlan", "gre", "geneve"],
            "Type drivers to load, by entry-point name.",
        ),
        Opt(
            "project_network_types",
            parse_list,
            ["local"],
            "Ordered network types for project networks.",
            aliases=("tenant_network_types",),
        ),
        Opt("mechanism_drivers", parse_list, [], "Mechanism drivers, in call order."),
        Opt("extension_drivers", parse_list, [], "Accepted for compatibility.",
            no_effect="port_security, dns and qos attributes come with their service plugins, not "
                      "extension drivers"),
        Opt("external_network_type", str, "", "Network type for router:external networks without provider attributes."),
        Opt("path_mtu", parse_nonnegative_int, 0, "Max MTU of the overlay path (0: unset)."),
        Opt("physical_network_mtus", parse_dict_list, {}, "physnet:mtu pairs."),
        Opt("overlay_ip_version", parse_choice("4", "6"), "4", "IP version of the tunnel underlay (for overhead)."),
    ),
    "ml2_type_flat": _opts(
        Opt("flat_networks", parse_list, ["*"], "Physical networks allowed for flat ('*' = any)."),
    ),
    "ml2_type_vlan": _opts(
        Opt("network_vlan_ranges", parse_list, [], "physnet[:min:max] entries; a bare name means 1..4094."),
    ),
    "ml2_type_vxlan": _opts(
        Opt("vni_ranges", parse_list, [], "min:max VXLAN VNI ranges for project networks."),
        Opt("vxlan_group", str, "", "Accepted for compatibility; multicast is not used.",
            no_effect="VXLAN flooding uses head-end replication to the known hosts, never multicast"),
    ),
    "ml2_type_gre": _opts(
        Opt("tunnel_id_ranges", parse_list, [], "min:max GRE key ranges for project networks."),
    ),
    "ml2_type_geneve": _opts(
        Opt("vni_ranges", parse_list, [], "min:max Geneve VNI ranges for project networks."),
        Opt("max_header_size", parse_positive_int, 30, "Geneve header size for MTU maths."),
    ),
    "agent": _opts(
        Opt("tunnel_types", parse_list, [], "Tunnel types this agent terminates."),
        Opt("report_interval", parse_positive_int, 30, "Seconds between heartbeats."),
        Opt("resync_interval", parse_positive_int, 300, "Seconds between full resyncs."),
        Opt("server_url", str, "http://127.0.0.1:9696", "Netplex API endpoint."),
    ),
    "ovs": _opts(
        Opt("local_ip", str, "", "Tunnel endpoint address of this host."),
        Opt("bridge_mappings", parse_dict_list, {}, "physnet:bridge pairs."),
        Opt("integration_bridge", str, "br-int", "Integration bridge name."),
        Opt("datapath_type", parse_choice("system", "netdev"), "netdev", "OVS datapath type."),
        Opt("ovsdb_connection", str, "", "OVSDB socket (unix:PATH); empty: the default."),
    ),
    "linux_bridge": _opts(
        Opt("physical_interface_mappings", parse_dict_list, {}, "physnet:interface pairs."),
        Opt("bridge_mappings", parse_dict_list, {}, "physnet:existing-bridge pairs."),
    ),
    "vxlan": _opts(
        Opt("local_ip", str, "", "VXLAN endpoint address of this host."),
        Opt("enable_vxlan", parse_bool, True, "Whether VXLAN networks are served."),
        Opt("l2_population", parse_bool, True, "Always on: no multicast is used.",
            no_effect="agents always populate forwarding entries from the change feed"),
        Opt("udp_dstport", parse_port, 4789, "VXLAN UDP destination port."),
    ),
    "oslo_policy": _opts(
        Opt(
            "policy_file",
            str,
            "policy.yaml",
            "Operator rules overriding the policy defaults (Neutron's rule syntax, YAML or JSON); "
            "a relative name is looked up next to the configuration files. The default name may be "
            "absent; any other name must exist. See docs/policy.md.",
        ),
    ),
    "vif": _opts(
        Opt("default_vif_type", str, "", "vif_type the compute side uses when the server gives none (opt-in)."),
        Opt("default_bridge_name", str, "", "Bridge for the default vif_type."),
    ),
}


_NOTIFY = "Netplex has no Nova notifier yet: the compute side learns port status from the port itself"
_AGENTS = "Netplex's host agents take their settings from their own [agent]/[ovs]/[linux_bridge] options"
_LOGGING = "logging goes to the server's standard error (debug is honoured)"
_RPC = "Netplex has no message bus: agents follow the server's HTTP change feed"
_POOL = "the connection pool is sized by SQLAlchemy's defaults"
_L3 = "routers are served by the l3 service plugin, which does not read this option"
_DHCP = "the dhcp service plugin always schedules to the least-loaded live agent"

#: Options of a standard Neutron deployment Netplex reads but does not act on, when no
#: driver or plugin declares them: section -> option -> why. A file that sets one gets one
#: start-up line "[section] option: accepted, no effect because <why>" (never "unknown
#: option"). A declared option (SCHEMA, a plugin's entry point) always wins over this table,
#: so a plugin that starts honouring one of them simply declares it.
ACCEPTED: dict[str, dict[str, str]] = {
    "DEFAULT": {
        **dict.fromkeys(("notify_nova_on_port_status_changes", "notify_nova_on_port_data_changes",
                         "send_events_interval"), _NOTIFY),
        "dhcp_agent_notification": "DHCP agents follow the change feed; there are no RPC notifications",
        "allow_bulk": "bulk create is always allowed (all or nothing, one transaction)",
        "ipam_driver": "Netplex's IPAM (netplex/core/ipam.py) is the only one",
        "dns_domain": "the dns extension is not built yet; ports carry no dns_assignment",
        "filter_validation": "unknown filters are always refused with 400, as Neutron does when it is true",
        "api_paste_config": "the HTTP pipeline is built in code (no paste)",
        "api_extensions_path": "extensions come from entry points, not a path",
        "auth_uri": "Keystone is not supported yet",
        **dict.fromkeys(("rpc_workers", "rpc_state_report_workers", "rpc_response_timeout",
                         "transport_url", "control_exchange", "rpc_backend"), _RPC),
        **dict.fromkeys(("router_distributed", "l3_ha", "max_l3_agents_per_router",
                         "allow_automatic_l3agent_failover", "router_auto_schedule",
                         "router_scheduler_driver"), _L3),
        # dhcp_agents_per_network, network_auto_schedule, dhcp_lease_duration and
        # allow_automatic_dhcp_failover are declared by the dhcp plugin's options.
        **dict.fromkeys(("network_scheduler_driver", "dhcp_load_type"), _DHCP),
        **dict.fromkeys(("log_dir", "log_file", "use_syslog", "use_stderr", "use_journal", "verbose",
                         "default_log_levels", "log_date_format", "logging_context_format_string",
                         "logging_default_format_string", "syslog_log_facility",
                         "publish_errors", "instance_format"), _LOGGING),
        "interface_driver": _AGENTS,
        "enable_new_agents": "new agents always serve at once",
        "vlan_transparent": "the vlan-transparent extension is not built",
        "default_availability_zones": "availability zones are not built",
        "use_ssl": "TLS is left to a front proxy",
        "my_ip": "the server does not need its own address",
        "external_dns_driver": "the dns extension is not built yet",
        "wsgi_keep_alive": "the HTTP server (uvicorn) keeps connections alive itself",
        "notification_driver": _RPC,
    },
    "agent": {
        **dict.fromkeys(("l2_population", "arp_responder", "enable_distributed_routing",
                         "drop_flows_on_start", "prevent_arp_spoofing", "extensions",
                         "polling_interval", "minimize_polling", "root_helper", "root_helper_daemon",
                         "use_helper_for_ns_read", "availability_zone", "log_agent_heartbeats",
                         "dont_fragment", "veth_mtu", "tunnel_csum", "agent_type",
                         "explicitly_egress_direct", "baremetal_smartnic"), _AGENTS),
    },
    "ovs": {
        **dict.fromkeys(("tunnel_bridge", "int_peer_patch_port", "tun_peer_patch_port",
                         "of_interface", "ovsdb_interface", "vhostuser_socket_dir",
                         "of_listen_address", "of_listen_port", "of_connect_timeout",
                         "of_request_timeout", "ovsdb_timeout", "use_veth_interconnection",
                         "enable_tunneling", "tunnel_types", "resource_provider_bandwidths"), _AGENTS),
    },
    "database": {
        **dict.fromkeys(("max_pool_size", "max_overflow", "pool_timeout", "idle_timeout",
                         "connection_recycle_time", "min_pool_size", "retry_interval",
                         "db_max_retries", "sqlite_synchronous", "connection_debug",
                         "connection_trace", "mysql_sql_mode", "slave_connection",
                         "use_db_reconnect"), _POOL),
    },
}

#: Whole sections accepted without looking at their options: section name (or a prefix
#: ending in ``*``) -> why; one start-up line per section.
ACCEPTED_SECTIONS: dict[str, str] = {
    "keystone_authtoken": "Keystone is not supported yet: requests are served under noauth "
                          "(X-Project-Id / X-Roles are trusted; do not expose this port)",
    "oslo_messaging_*": _RPC,
    "oslo_concurrency": "Netplex takes no file locks (the database serializes writers)",
    "nova": _NOTIFY,
    "placement": "Netplex reports no resources to Placement",
    "oslo_middleware": "the HTTP pipeline is built in code",
    "oslo_versionedobjects": "Netplex has no versioned objects on a message bus",
    "experimental": "no experimental features are gated by it",
    "ironic": "baremetal binding is not built",
    "designate": "the dns extension is not built yet",
    "privsep": "agents run privileged operations themselves (netplex/linux)",
    "ssl": "TLS is left to a front proxy",
    "cors": "CORS is not served",
    "healthcheck": "GET / answers the version document",
    "profiler": "no profiler is built in",
}


def _section_accepted(section: str) -> str | None:
    for name, why in ACCEPTED_SECTIONS.items():
        if section == name or (name.endswith("*") and section.startswith(name[:-1])):
            return why
    return None


#: Entry-point group for third-party options. Each entry point loads to a
#: mapping ``{section: [Opt, ...]}`` (or a callable returning one), e.g. in the
#: driver's pyproject::
#:
#:     [project.entry-points."netplex.config_options"]
#:     acme = "acme_netplex.driver:CONFIG_OPTIONS"
OPTIONS_ENTRY_POINT_GROUP = "netplex.config_options"


def register_options(section: str, opts: Iterable[Opt]) -> None:
    """Declare options of ``section`` (typically a driver's own section).

    Declaring the same option again with the same parser and default is a
    no-op; a different definition of an existing option raises ConfigError
    (two drivers must not disagree about what an option means).
    """
    known = SCHEMA.setdefault(section, {})
    for opt in opts:
        old = known.get(opt.name)
        if old is not None and (old.parse, old.default) != (opt.parse, opt.default):
            raise ConfigError(f"[{section}] {opt.name} is declared twice, differently")
        known[opt.name] = opt


_plugins_loaded = False


def plugin_options() -> None:
    """Register the options every installed ``netplex.config_options`` entry point declares (once)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group=OPTIONS_ENTRY_POINT_GROUP):
        try:
            declared = ep.load()
            if callable(declared):
                declared = declared()
            items = dict(declared).items()
        except Exception as exc:
            raise ConfigError(
                f"cannot load the options of {ep.name!r} ({ep.value}): {exc}; "
                "fix or uninstall that package"
            ) from exc
        for section, opts in items:
            register_options(section, opts)
    _plugins_loaded = True


@dataclass
class Config:
    """Typed configuration values; ``cfg.get("ml2", "type_drivers")``."""

    values: dict[str, dict[str, Any]]
    unknown: list[str] = field(default_factory=list)
    source: str | None = None
    #: One line per option (or accepted section) a file set that has no effect, with why.
    accepted: list[str] = field(default_factory=list)

    def get(self, section: str, name: str) -> Any:
        return self.values[section][name]

    def section(self, section: str) -> Mapping[str, Any]:
        return self.values[section]

    @property
    def state_path(self) -> Path:
        return Path(self.get("DEFAULT", "state_path") or default_state_path())

    @property
    def host(self) -> str:
        return str(self.get("DEFAULT", "host") or socket.gethostname())

    @property
    def database_url(self) -> str:
        url = str(self.get("database", "connection"))
        if not url:
            return f"sqlite:///{self.state_path / 'netplex.sqlite'}"
        return url

    def with_overrides(self, overrides: Mapping[tuple[str, str], Any]) -> Config:
        """A copy with typed values replaced (used by tests and the CLI)."""
        values = {s: dict(opts) for s, opts in self.values.items()}
        for (section, name), value in overrides.items():
            if name not in SCHEMA.get(section, {}):
                raise ConfigError(f"[{section}] {name}: no such option")
            values[section][name] = value
        return Config(values, list(self.unknown), self.source, list(self.accepted))


def _defaults() -> dict[str, dict[str, Any]]:
    import copy

    return {s: {n: copy.deepcopy(o.default) for n, o in opts.items()} for s, opts in SCHEMA.items()}


def _parse_into(
    values: dict[str, dict[str, Any]],
    unknown: list[str],
    parser: configparser.RawConfigParser,
    origin: str,
    accepted: list[str],
) -> None:
    sections: Iterable[str] = ["DEFAULT", *parser.sections()]
    for section in sections:
        items = (
            parser.defaults().items()
            if section == "DEFAULT"
            else ((k, v) for k, v in parser.items(section, raw=True) if k not in parser.defaults())
        )
        schema = SCHEMA.get(section)
        loose = ACCEPTED.get(section, {})
        for name, raw in items:
            opt = None if schema is None else (
                schema.get(name) or next((o for o in schema.values() if name in o.aliases), None))
            if opt is None:
                why = loose.get(name)
                if why is None and schema is None:
                    why = _section_accepted(section)
                    if why is not None:
                        _note(accepted, f"[{section}]: accepted, no effect because {why}")
                        continue
                if why is not None:
                    _note(accepted, f"[{section}] {name}: accepted, no effect because {why}")
                elif schema is None:
                    unknown.append(f"[{section}] {name} ({origin}: unknown section)")
                else:
                    unknown.append(f"[{section}] {name} ({origin})")
                continue
            try:
                values[section][opt.name] = opt.parse(raw)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"[{section}] {name} = {raw!r} in {origin} is invalid: {exc}") from None
            if opt.no_effect:
                _note(accepted, f"[{section}] {name}: accepted, no effect because {opt.no_effect}")
            if (section, opt.name, values[section][opt.name]) == ("DEFAULT", "auth_strategy", "keystone"):
                _note(accepted, "[DEFAULT] auth_strategy = keystone: accepted, NOT enforced because Keystone "
                                "is not supported yet: requests are served as under noauth (X-Project-Id / "
                                "X-Roles are trusted; do not expose this port)")


def _note(lines: list[str], line: str) -> None:
    if line not in lines:
        lines.append(line)


def load(paths: Iterable[str | os.PathLike[str]] = (), text: str | None = None) -> Config:
    """Read INI files (later ones win) and/or INI text into a :class:`Config`."""
    plugin_options()
    values = _defaults()
    unknown: list[str] = []
    accepted: list[str] = []
    sources: list[str] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file {p} does not exist")
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read(p)
        except configparser.Error as exc:
            raise ConfigError(f"cannot parse {p}: {exc}") from None
        _parse_into(values, unknown, parser, str(p), accepted)
        sources.append(str(p))
    if text is not None:
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read_string(text)
        except configparser.Error as exc:
            raise ConfigError(f"cannot parse configuration text: {exc}") from None
        _parse_into(values, unknown, parser, "<text>", accepted)
        sources.append("<text>")
    return Config(values, unknown, ", ".join(sources) or None, accepted)
