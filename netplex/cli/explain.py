"""``netplex explain-binding PORT``: why a port is, or is not, bound."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)


def explain_binding(
    port: Annotated[str, typer.Argument(help="Port id.")],
    url: Annotated[str, typer.Option(help="Netplex API endpoint.", envvar="OS_ENDPOINT")] = "http://127.0.0.1:9696",
) -> None:
    """Show each binding of PORT: host, vif_type, levels, agents, and every driver's reason."""
    try:
        r = httpx.get(f"{url.rstrip('/')}/v2.0/netplex/ports/{port}/explain-binding", timeout=10)
    except httpx.HTTPError as exc:
        err.print(f"[bold red]error:[/] cannot reach {url}: {exc}")
        err.print("[yellow]next:[/] start the server ('netplex server') or pass --url")
        raise typer.Exit(2) from None
    if r.status_code != 200:
        try:
            msg = r.json()["NeutronError"]["message"]
        except (ValueError, KeyError):
            msg = r.text
        err.print(f"[bold red]error:[/] {msg}")
        err.print("[yellow]next:[/] check the port id with 'openstack port list'")
        raise typer.Exit(1)
    data: dict[str, Any] = r.json()["explanation"]
    out.print(f"port [bold]{data['port_id']}[/] status [bold]{data['status']}[/]")
    if not data["bindings"]:
        out.print("no binding: set binding:host_id on the port to bind it")
    for b in data["bindings"]:
        colour = "red" if b["vif_type"] == "binding_failed" else "green" if b["vif_type"] != "unbound" else "yellow"
        out.print(
            f"\n[bold]{b['status']}[/] binding on host [bold]{b['host'] or '(none)'}[/]: "
            f"vif_type [{colour}]{b['vif_type']}[/] (attempt {b['attempt']})"
        )
        if b["vif_details"]:
            out.print(f"  vif_details: {b['vif_details']}")
        for lv in b["levels"]:
            out.print(f"  level {lv['level']}: {lv['driver']} on {lv['segment'] or lv['segment_id']}")
        if b["diagnostics"]:
            out.print("  why:")
            for line in b["diagnostics"]:
                out.print(f"    - {line}")
        if b["agents"]:
            t = Table("agent_type", "alive", "admin_state_up", "configurations", title=f"agents on {b['host']}")
            for a in b["agents"]:
                t.add_row(a["agent_type"], str(a["alive"]), str(a["admin_state_up"]), str(a["configurations"]))
            out.print(t)
        elif b["host"]:
            out.print(f"  no agent has registered on {b['host']}")
