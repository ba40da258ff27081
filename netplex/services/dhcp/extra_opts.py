"""Neutron's ``extra_dhcp_opt`` extension: ``extra_dhcp_opts`` on ports.

A list of ``{"opt_name", "opt_value", "ip_version"}`` (``ip_version`` 4 or 6, default 4).
Create stores the options (an entry whose value is ``null`` is ignored); update merges by
``(opt_name, ip_version)`` as Neutron does: a new value replaces, ``null`` removes, options
not named stay. The DHCP servers render them as dnsmasq ``--dhcp-optsfile`` lines tagged
with the port (see :mod:`netplex.linux.dnsmasq`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select

from netplex.core.attr_map import Attr
from netplex.core.context import Context
from netplex.core.service_api import ResourceExtension
from netplex.db.engine import Txn
from netplex.db.models.dhcp import ExtraDhcpOpt
from netplex.db.prepared import Prepared

__all__ = ["ExtraDhcpOpts", "to_extra_dhcp_opts"]

_CHUNK = 5000
_NAME = re.compile(r"^[A-Za-z0-9_:.\-]{1,64}$")
_OF_PORT = Prepared(select(ExtraDhcpOpt.opt_name, ExtraDhcpOpt.opt_value, ExtraDhcpOpt.ip_version)
                    .where(ExtraDhcpOpt.port_id == bindparam("id")))
_INSERT = Prepared(insert(ExtraDhcpOpt), keys=["port_id", "opt_name", "opt_value", "ip_version"])


def to_extra_dhcp_opts(value: Any) -> list[dict[str, Any]] | None:
    """Validate the request value (a 400 names what is wrong)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"'{value}' is not a list")
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise ValueError(f"'{item}' is not a dictionary")
        unknown = set(item) - {"opt_name", "opt_value", "ip_version"}
        if unknown:
            raise ValueError(f"Validation of dictionary's keys failed. Unexpected keys: {sorted(unknown)}")
        name = item.get("opt_name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"'{name}' is not a valid option name")
        val = item.get("opt_value")
        if val is not None and (not isinstance(val, str) or len(val) > 255 or "\n" in val):
            raise ValueError(f"'{val}' is not a valid option value")
        try:
            version = int(item.get("ip_version", 4))
        except (TypeError, ValueError):
            raise ValueError(f"'{item.get('ip_version')}' is not a valid IP version") from None
        if version not in (4, 6):
            raise ValueError(f"{version} is not a valid IP version")
        out.append({"opt_name": name, "opt_value": val, "ip_version": version})
    return out


PORT_EXTENSION: dict[str, Attr] = {
    "extra_dhcp_opts": Attr(allow_post=True, allow_put=True, default=None, convert=to_extra_dhcp_opts,
                            is_filter=False),
}


def _rows(conn: Connection, port_id: str) -> list[dict[str, Any]]:
    rows = _OF_PORT.rows(conn, {"id": port_id})
    return sorted(({"opt_name": r[0], "opt_value": r[1], "ip_version": r[2]} for r in rows),
                  key=lambda o: (o["ip_version"], o["opt_name"]))


class ExtraDhcpOpts(ResourceExtension):
    resource = "ports"

    def attributes(self) -> Mapping[str, Attr]:
        return PORT_EXTENSION

    def process_create(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        merged: dict[tuple[str, int], str] = {}
        for o in request.get("extra_dhcp_opts") or []:
            if o["opt_value"] is not None:
                merged[(o["opt_name"], o["ip_version"])] = o["opt_value"]
        if merged:
            _INSERT.executemany(txn.conn, [{"port_id": result["id"], "opt_name": n, "opt_value": v, "ip_version": ver}
                                           for (n, ver), v in merged.items()])
        result["extra_dhcp_opts"] = sorted(
            ({"opt_name": n, "opt_value": v, "ip_version": ver} for (n, ver), v in merged.items()),
            key=lambda o: (o["ip_version"], o["opt_name"]))

    def process_update(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        if "extra_dhcp_opts" not in request:
            return
        conn = txn.conn
        pid = result["id"]
        for o in request["extra_dhcp_opts"] or []:
            conn.execute(delete(ExtraDhcpOpt).where(ExtraDhcpOpt.port_id == pid, ExtraDhcpOpt.opt_name == o["opt_name"],
                                                    ExtraDhcpOpt.ip_version == o["ip_version"]))
            if o["opt_value"] is not None:
                _INSERT.execute(conn, {"port_id": pid, "opt_name": o["opt_name"], "opt_value": o["opt_value"],
                                       "ip_version": o["ip_version"]})
        result["extra_dhcp_opts"] = _rows(conn, pid)

    def extend(self, conn: Connection, results: Sequence[dict[str, Any]]) -> None:
        if len(results) == 1:
            results[0]["extra_dhcp_opts"] = _rows(conn, results[0]["id"])
            return
        ids = [r["id"] for r in results]
        found: dict[str, list[dict[str, Any]]] = {}
        x = ExtraDhcpOpt
        for i in range(0, len(ids), _CHUNK):
            for pid, name, val, ver in conn.execute(
                    select(x.port_id, x.opt_name, x.opt_value, x.ip_version).where(x.port_id.in_(ids[i:i + _CHUNK]))
                    .order_by(x.port_id, x.ip_version, x.opt_name)):
                found.setdefault(pid, []).append({"opt_name": name, "opt_value": val, "ip_version": ver})
        for r in results:
            r["extra_dhcp_opts"] = found.get(r["id"], [])
