"""Generic CRUD routes for a collection described by an attribute map.

``/v2.0/{collection}`` (list, create incl. bulk) and
``/v2.0/{collection}/{id}`` (show, update, delete), plus the ``/tags``
sub-resource. Handlers only parse, call the service and shape the answer;
the service does the work in a worker thread (the core is synchronous).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from netplex.api.attributes import (
    Attr,
    HTTPBadRequest,
    convert_filter,
    validate_body,
    view,
)
from netplex.api.http import JSON, context_from, if_match_revision, json_body
from netplex.core.listing import ListQuery

PAGING_KEYS = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}


@dataclass(frozen=True)
class Collection:
    member: str  # "network"
    plural: str  # "networks"
    attrs: Mapping[str, Attr]
    service_name: str  # attribute of Core
    extra_filters: frozenset[str] = frozenset()
    allow_create: bool = True
    allow_update: bool = True
    allow_delete: bool = True
    has_tags: bool = False


def parse_list_query(request: Request, coll: Collection, is_admin: bool) -> ListQuery:
    params = request.query_params
    q = ListQuery()
    fields: list[str] = []
    for f in params.getlist("fields"):
        fields.extend(x for x in f.split(",") if x)
    q.fields = fields or None
    keys, dirs = params.getlist("sort_key"), params.getlist("sort_dir")
    if dirs and len(dirs) != len(keys):
        raise HTTPBadRequest("The number of sort_keys and sort_dirs must be same")
    for i, key in enumerate(keys):
        d = dirs[i] if dirs else "asc"
        if d not in ("asc", "desc"):
            raise HTTPBadRequest(f"{d} is invalid value for sort_dir, valid value is 'asc' and 'desc'")
        if key not in coll.attrs:
            raise HTTPBadRequest(f"{key} is an invalid attribute for sort_keys")
        q.sorts.append((key, d == "asc"))
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise HTTPBadRequest(f"Limit must be an integer 0 or greater and not '{params['limit']}'") from None
        if limit < 0:
            raise HTTPBadRequest(f"Limit must be an integer 0 or greater and not '{limit}'")
        q.limit = limit or None
    q.marker = params.get("marker")
    q.page_reverse = params.get("page_reverse", "false").lower() == "true"
    bad: list[str] = []
    for key in params:
        if key in PAGING_KEYS:
            continue
        if key in coll.extra_filters:
            q.filters[key] = params.getlist(key)
            continue
        spec = coll.attrs.get(key)
        if spec is None or not spec.is_filter or (spec.admin_only and not is_admin):
            bad.append(key)
            continue
        values = [convert_filter(coll.attrs, key, v) for v in params.getlist(key)]
        if key == "tenant_id":
            key = "project_id"
        q.filters.setdefault(key, []).extend(values)
    if bad:
        raise HTTPBadRequest(f"{sorted(bad)} is invalid attribute for filtering")
    return q


def _links(request: Request, coll: Collection, q: ListQuery, items: list[dict[str, Any]]) -> list[dict[str, str]]:
    base = str(request.url.replace(query=""))
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("marker", "page_reverse")]
    links = []
    if q.limit and len(items) >= q.limit:
        last = items[0 if q.page_reverse else -1]["id"]
        keep_reverse = [("page_reverse", "True")] if q.page_reverse else []
        rel = "next" if not q.page_reverse else "previous"
        links.append({"rel": rel, "href": f"{base}?{urlencode([*params, ('marker', last), *keep_reverse])}"})
    if q.marker and items:
        first = items[-1 if q.page_reverse else 0]["id"]
        rel = "previous" if not q.page_reverse else "next"
        extra = [("page_reverse", "True")] if not q.page_reverse else []
        links.append({"rel": rel, "href": f"{base}?{urlencode([*params, ('marker', first), *extra])}"})
    return links


def routes(coll: Collection) -> list[Route]:
    def service(request: Request) -> Any:
        return getattr(request.app.state.core, coll.service_name)

    async def list_or_create(request: Request) -> Response:
        ctx = context_from(request)
        if request.method == "GET":
            q = parse_list_query(request, coll, ctx.is_admin)
            items = await run_in_threadpool(service(request).find, ctx, q)
            if q.page_reverse:
                items = list(reversed(items))
            payload: dict[str, Any] = {
                coll.plural: [view(i, coll.attrs, is_admin=ctx.is_admin, fields=q.fields) for i in items]
            }
            if q.limit or q.marker:
                payload[f"{coll.plural}_links"] = _links(request, coll, q, items)
            return JSON(payload)
        if not coll.allow_create:
            raise HTTPBadRequest(f"Creating {coll.plural} is not supported")
        body = await json_body(request)
        if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in (coll.member, coll.plural):
            raise HTTPBadRequest(f"Unable to find '{coll.member}' in request body")
        bulk = coll.plural in body
        raw_items = body[coll.plural] if bulk else [body[coll.member]]
        if bulk and (not isinstance(raw_items, list) or not raw_items):
            raise HTTPBadRequest(f"Bulk '{coll.plural}' must be a non-empty list")
        items = [
            validate_body(coll.attrs, it, resource=coll.member, for_create=True, is_admin=ctx.is_admin)
            for it in raw_items
        ]
        svc = service(request)
        create_async = getattr(svc, "create_bulk_async", None)
        if create_async is not None:
            created = await create_async(ctx, items)
        else:
            created = await run_in_threadpool(svc.create_bulk, ctx, items)
        shown = [view(i, coll.attrs, is_admin=ctx.is_admin, fields=None) for i in created]
        if bulk:
            return JSON({coll.plural: shown}, status_code=201)
        return JSON({coll.member: shown[0]}, status_code=201)

    async def member(request: Request) -> Response:
        ctx = context_from(request)
        rid = request.path_params["id"]
        svc = service(request)
        if request.method == "GET":
            fields = [x for f in request.query_params.getlist("fields") for x in f.split(",") if x] or None
            item = await run_in_threadpool(svc.get, ctx, rid)
            return JSON({coll.member: view(item, coll.attrs, is_admin=ctx.is_admin, fields=fields)})
        if request.method == "PUT":
            if not coll.allow_update:
                raise HTTPBadRequest(f"Updating {coll.plural} is not supported")
            body = await json_body(request)
            if not isinstance(body, dict) or set(body) != {coll.member}:
                raise HTTPBadRequest(f"Unable to find '{coll.member}' in request body")
            attrs = validate_body(
                coll.attrs, body[coll.member], resource=coll.member, for_create=False, is_admin=ctx.is_admin
            )
            rev = if_match_revision(request)
            item = await run_in_threadpool(lambda: svc.update(ctx, rid, attrs, if_revision=rev))
            return JSON({coll.member: view(item, coll.attrs, is_admin=ctx.is_admin, fields=None)})
        if not coll.allow_delete:
            raise HTTPBadRequest(f"Deleting {coll.plural} is not supported")
        rev = if_match_revision(request)
        await run_in_threadpool(lambda: svc.delete(ctx, rid, if_revision=rev))
        return Response(status_code=204)

    out = [
        Route(f"/v2.0/{coll.plural}", list_or_create, methods=["GET", "POST"]),
        Route(f"/v2.0/{coll.plural}.json", list_or_create, methods=["GET", "POST"]),
        Route(f"/v2.0/{coll.plural}/{{id}}", member, methods=["GET", "PUT", "DELETE"]),
        Route(f"/v2.0/{coll.plural}/{{id}}.json", member, methods=["GET", "PUT", "DELETE"]),
    ]
    if coll.has_tags:
        out.extend(tag_routes(coll))
    return out


def tag_routes(coll: Collection) -> list[Route]:
    async def all_tags(request: Request) -> Response:
        ctx = context_from(request)
        tags = request.app.state.core.tags
        rid = request.path_params["id"]
        if request.method == "GET":
            return JSON({"tags": await run_in_threadpool(tags.get_all, ctx, coll.plural, rid)})
        if request.method == "PUT":
            body = await json_body(request)
            if not isinstance(body, dict) or set(body) != {"tags"}:
                raise HTTPBadRequest("Unable to find 'tags' in request body")
            new = await run_in_threadpool(tags.replace, ctx, coll.plural, rid, body["tags"])
            return JSON({"tags": new})
        await run_in_threadpool(tags.remove_all, ctx, coll.plural, rid)
        return Response(status_code=204)

    async def one_tag(request: Request) -> Response:
        ctx = context_from(request)
        tags = request.app.state.core.tags
        rid, tag = request.path_params["id"], request.path_params["tag"]
        if request.method == "GET":
            await run_in_threadpool(tags.has, ctx, coll.plural, rid, tag)
            return Response(status_code=204)
        if request.method == "PUT":
            await run_in_threadpool(tags.add, ctx, coll.plural, rid, tag)
            return Response(status_code=201)
        await run_in_threadpool(tags.remove, ctx, coll.plural, rid, tag)
        return Response(status_code=204)

    return [
        Route(f"/v2.0/{coll.plural}/{{id}}/tags", all_tags, methods=["GET", "PUT", "DELETE"]),
        Route(f"/v2.0/{coll.plural}/{{id}}/tags/{{tag}}", one_tag, methods=["GET", "PUT", "DELETE"]),
    ]
