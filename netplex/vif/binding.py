"""From a port dict (as the REST API returns it) to a :class:`~netplex.vif.model.VIF`.

This is where the compute side decides whether a port is pluggable:

* a bound port (``binding:vif_type`` is a real type) gives a VIF;
* ``binding_failed`` raises :class:`~netplex.vif.errors.BindingFailed` with the
  reasons the server keeps in ``binding:diagnostics``. The configured default
  is deliberately *not* used here: the server has said no mechanism can serve
  this host, and plugging anyway would produce a VM without connectivity;
* no binding data at all (a server without the portbindings extension), or
  ``unbound`` although ``binding:host_id`` is set (the server did not bind),
  uses the ``[vif]`` default when the operator configured one (logged as a
  warning, because it bypasses the server's choice), else raises
  :class:`~netplex.vif.errors.PortNotBound`;
* ``unbound`` without a host raises :class:`~netplex.vif.errors.PortNotBound`:
  nobody asked the server to bind it yet.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netplex.config import Config
from netplex.vif.errors import BindingFailed, BindingReason, PortNotBound
from netplex.vif.model import (
    BINDING_FAILED,
    UNBOUND,
    VIF,
    FixedIP,
    freeze_details,
)

__all__ = [
    "VifDefaults",
    "binding_reasons",
    "host_id",
    "is_bound",
    "vif_from_port",
]

LOG = logging.getLogger(__name__)

VIF_TYPE = "binding:vif_type"
VIF_DETAILS = "binding:vif_details"
HOST_ID = "binding:host_id"
VNIC_TYPE = "binding:vnic_type"
DIAGNOSTICS = "binding:diagnostics"


def host_id(cfg: Config) -> str:
    """The host id to send as ``binding:host_id``: ``[DEFAULT] host``, else the hostname.

    The agent on the same machine reads the same option, so with no
    configuration at all server, agent and compute side agree.
    """
    return cfg.host


@dataclass(frozen=True)
class VifDefaults:
    """The operator's fallback binding (``[vif] default_vif_type`` + details).

    Used only when the server gives no binding (see the module docstring).
    """

    vif_type: str
    details: Mapping[str, Any] = field(default_factory=lambda: freeze_details({}), hash=False)

    @classmethod
    def from_config(cls, cfg: Config) -> VifDefaults | None:
        """The ``[vif]`` defaults, or None when ``default_vif_type`` is not set (the default)."""
        vif_type = str(cfg.get("vif", "default_vif_type") or "").strip()
        if not vif_type:
            return None
        details: dict[str, Any] = {}
        bridge = str(cfg.get("vif", "default_bridge_name") or "").strip()
        if bridge:
            details["bridge_name"] = bridge
        return cls(vif_type, freeze_details(details))


def is_bound(port: Mapping[str, Any]) -> bool:
    """True when the server has chosen a vif_type (neither unbound nor failed)."""
    vif_type = port.get(VIF_TYPE)
    return bool(vif_type) and vif_type not in (UNBOUND, BINDING_FAILED)


def binding_reasons(port: Mapping[str, Any]) -> tuple[BindingReason, ...]:
    """The per-driver reasons from ``binding:diagnostics``, in the server's order.

    Accepted shapes: a list of strings (Netplex's: ``"<driver>: <reason>"`` or
    ``"<driver> (level N): <reason>"``), a list of ``{"driver": ..., "reason": ...}``
    objects (``mechanism_driver``/``name`` and ``message``/``detail`` are accepted
    as synonyms), a ``{driver: reason}`` object, or one string.
    """
    raw = port.get(DIAGNOSTICS)
    if not raw:
        return ()
    if isinstance(raw, str):
        return (_from_line(raw),)
    if isinstance(raw, Mapping):
        return tuple(BindingReason(str(k), _text(v)) for k, v in raw.items())
    out: list[BindingReason] = []
    if isinstance(raw, Iterable):
        for item in raw:
            if isinstance(item, Mapping):
                driver = item.get("driver") or item.get("mechanism_driver") or item.get("name")
                reason = item.get("reason") or item.get("message") or item.get("detail")
                if reason is None:
                    rest = {k: v for k, v in item.items()
                            if k not in ("driver", "mechanism_driver", "name")}
                    reason = ", ".join(f"{k}={v}" for k, v in rest.items()) or "(no reason)"
                out.append(BindingReason(str(driver) if driver else None, _text(reason)))
            else:
                out.append(_from_line(_text(item)))
    return tuple(out)


_DRIVER_LINE = re.compile(
    r"^(?P<driver>[A-Za-z0-9_.\-]+(?: \(level \d+\))?): (?P<reason>.+)$", re.S
)


def _from_line(line: str) -> BindingReason:
    """``"openvswitch: no live agent on host h1"`` -> driver ``openvswitch`` + reason."""
    m = _DRIVER_LINE.match(line.strip())
    if m is None:
        return BindingReason(None, line.strip())
    return BindingReason(m["driver"], m["reason"])


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _fixed_ips(
    port: Mapping[str, Any], subnets: Mapping[str, Mapping[str, Any]]
) -> tuple[FixedIP, ...]:
    out: list[FixedIP] = []
    for fip in port.get("fixed_ips") or ():
        subnet_id = str(fip.get("subnet_id") or "")
        subnet = subnets.get(subnet_id)
        prefixlen: int | None = None
        gateway: str | None = None
        if subnet is not None:
            cidr = subnet.get("cidr")
            if cidr:
                prefixlen = ipaddress.ip_network(str(cidr), strict=False).prefixlen
            gateway = subnet.get("gateway_ip") or None
        out.append(FixedIP(subnet_id, str(fip["ip_address"]), prefixlen, gateway))
    return tuple(out)


def _mtu(network: Mapping[str, Any] | None) -> int | None:
    if not network:
        return None
    mtu = network.get("mtu")
    return mtu if isinstance(mtu, int) and mtu > 0 else None


def vif_from_port(
    port: Mapping[str, Any],
    *,
    network: Mapping[str, Any] | None = None,
    subnets: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] = (),
    defaults: VifDefaults | None = None,
) -> VIF:
    """Build the :class:`VIF` for ``port`` (a port dict from the API).

    :param network: the port's network; gives the MTU.
    :param subnets: the subnets of the fixed IPs (by id, or an iterable of
        subnet dicts); gives prefix lengths and gateways.
    :param defaults: the operator's fallback (:meth:`VifDefaults.from_config`).
    :raises BindingFailed: the port is ``binding_failed``.
    :raises PortNotBound: no usable binding and no default (see module docstring).
    """
    port_id = str(port["id"])
    by_id: Mapping[str, Mapping[str, Any]] = (
        subnets if isinstance(subnets, Mapping) else {str(s["id"]): s for s in subnets}
    )
    host = port.get(HOST_ID)
    vif_type = port.get(VIF_TYPE)
    details: Mapping[str, Any] = port.get(VIF_DETAILS) or {}
    from_default = False

    if vif_type == BINDING_FAILED:
        raise BindingFailed(port_id, host, binding_reasons(port))
    if VIF_TYPE not in port or not vif_type or (vif_type == UNBOUND and host):
        why = (
            "the server reports no binding data (no portbindings extension?)"
            if VIF_TYPE not in port or not vif_type
            else f"the server did not bind it for host {host!r}"
        )
        if defaults is None:
            raise PortNotBound(
                port_id, vif_type, host,
                why + "; set [vif] default_vif_type to plug such ports with a local default",
            )
        LOG.warning(
            "port %s: %s; using the configured default vif_type %r (details %s)",
            port_id, why, defaults.vif_type, dict(defaults.details),
        )
        vif_type, details, from_default = defaults.vif_type, defaults.details, True
    elif vif_type == UNBOUND:
        raise PortNotBound(
            port_id, vif_type, host, "binding:host_id is not set; set it to this host first"
        )

    return VIF(
        id=port_id,
        mac_address=str(port["mac_address"]),
        network_id=str(port["network_id"]),
        vif_type=str(vif_type),
        details=freeze_details(details),
        host_id=str(host or ""),
        vnic_type=str(port.get(VNIC_TYPE) or "normal"),
        fixed_ips=_fixed_ips(port, by_id),
        mtu=_mtu(network),
        from_default=from_default,
    )
