"""Version discovery (``GET /``, ``GET /v2.0``) and the extensions list.

The extensions list names only what is really implemented: clients use it
to decide which features to try.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from netplex.api.http import JSON, plain_error

UPDATED = "2026-11-20T00:00:00-00:00"

#: alias -> (name, description)
EXTENSIONS: dict[str, tuple[str, str]] = {
    "agent": ("agent", "The agent management extension."),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "binding-extended": ("Port Bindings Extended", "Expose port bindings of a virtual port to external application"),
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter parameters."),
    "multi-provider": ("Multi Provider Network", "Expose mapping of virtual networks to multiple physical networks"),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "revision-if-match": (
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    "segment": ("Segment", "Segments extension."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "standard-attr-description": ("standard-attr-description", "Extension to add descriptions to standard attributes"),
    "standard-attr-revisions": (
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    "standard-attr-tag": (
        "Tag support for resources with standard attribute: subnet, network, port",
        "Enables to set tag on resources with standard attribute.",
    ),
    "standard-attr-timestamp": (
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
    "port-binding-diagnostics": (
        "Port binding diagnostics",
        "Netplex: why each mechanism driver did or did not bind a port (admin only).",
    ),
}


def _ext(known: Mapping[str, tuple[str, str]], alias: str) -> dict[str, Any]:
    name, desc = known[alias]
    return {"alias": alias, "name": name, "description": desc, "updated": UPDATED, "links": []}


def version_routes(collections: Sequence[Any], extra: Mapping[str, tuple[str, str]] | None = None) -> list[Route]:
    """``extra``: the extensions service plugins add (alias -> (name, description))."""
    known = {**EXTENSIONS, **(extra or {})}

    async def root(request: Request) -> Response:
        href = str(request.base_url).rstrip("/") + "/v2.0/"
        return JSON({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"href": href, "rel": "self"}]}]})

    async def v2(request: Request) -> Response:
        base = str(request.base_url).rstrip("/") + "/v2.0/"
        return JSON(
            {
                "resources": [
                    {"name": c.member, "collection": c.plural,
                     "links": [{"href": base + (c.path or c.plural), "rel": "self"}]}
                    for c in collections
                ]
            }
        )

    async def extensions(request: Request) -> Response:
        return JSON({"extensions": [_ext(known, a) for a in sorted(known)]})

    async def extension(request: Request) -> Response:
        alias = request.path_params["alias"]
        if alias not in known:
            return plain_error(404, "HTTPNotFound", f"Extension with alias {alias} does not exist")
        return JSON({"extension": _ext(known, alias)})

    return [
        Route("/", root, methods=["GET"]),
        Route("/v2.0", v2, methods=["GET"]),
        Route("/v2.0/", v2, methods=["GET"]),
        Route("/v2.0/extensions", extensions, methods=["GET"]),
        Route("/v2.0/extensions.json", extensions, methods=["GET"]),
        Route("/v2.0/extensions/{alias}", extension, methods=["GET"]),
    ]
