"""Generic CRUD routes for a collection described by an attribute map.

``/v2.0/{collection}`` (list, create incl. bulk) and
``/v2.0/{collection}/{id}`` (show, update, delete), plus the ``/tags``
sub-resource. Handlers only parse, authorize, call the service and shape the
answer; the service does the work in a worker thread (the core is synchronous).

Authorization happens here, for every collection alike (see
:mod:`netplex.api.policy`): the action and each attribute a body sets are
checked before the service is called (a 403 writes nothing, a bulk create is
checked item by item first), and every returned resource loses the attributes
the caller may not read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from netplex.api.attributes import (
    REQUIRED,
    Attr,
    HTTPBadRequest,
    convert_filter,
    validate_body,
)
from netplex.api.http import JSON, context_from, if_match_revision, json_body
from netplex.api.policy import CallerPolicy, LazyTarget
from netplex.core.attr_map import LIMITS, MAX_PAGE_LIMIT
from netplex.core.attr_map import shown as shown_value
from netplex.core.context import Context
from netplex.core.listing import ListQuery
from netplex.errors import (
    AgentNotFound,
    InvalidInput,
    NetworkNotFound,
    NotFound,
    PortNotFound,
    ResourceNotFound,
    SegmentNotFound,
    SubnetNotFound,
)

PAGING_KEYS = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}


@dataclass(frozen=True)
class Collection:
    member: str  # "network"
    plural: str  # "networks"
    attrs: Mapping[str, Attr]
    service_name: str  # attribute of the core services record (unused when ``service`` is given)
    extra_filters: frozenset[str] = frozenset()
    allow_create: bool = True
    allow_update: bool = True
    allow_delete: bool = True
    has_tags: bool = False
    #: The service object itself (a service plugin's collection); None: ``core.<service_name>``.
    service: Any = None
    #: The URL segment when it differs from the JSON key (``security-groups`` vs ``security_groups``).
    path: str = ""
    #: Member actions, ``PUT /v2.0/{path}/{id}/{action}``: name -> (ctx, id, body) -> response body.
    actions: Mapping[str, Callable[[Context, str, dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    #: Attribute defaults on create: a body value equal to its default is not
    #: "set" for policy (Neutron's rule: ``shared: false`` needs no admin).
    defaults: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        defaults = {k: a.default for k, a in self.attrs.items() if a.allow_post and a.default is not REQUIRED}
        object.__setattr__(self, "defaults", defaults)


_NOT_FOUND: dict[str, Callable[[str], NotFound]] = {
    "network": lambda rid: NetworkNotFound(net_id=rid),
    "subnet": lambda rid: SubnetNotFound(subnet_id=rid),
    "port": lambda rid: PortNotFound(port_id=rid),
    "segment": lambda rid: SegmentNotFound(segment_id=rid),
    "agent": lambda rid: AgentNotFound(id=rid),
}


class _Networks:
    """Network lookups for rules on ports and subnets (``%(network:tenant_id)s``), cached per request."""

    def __init__(self, core: Any, ctx: Context) -> None:
        self.core = core
        self.ctx = ctx
        self.seen: dict[str, Mapping[str, Any] | None] = {}

    def __call__(self, network_id: str) -> Mapping[str, Any] | None:
        if network_id not in self.seen:
            # Raises NetworkNotFound for a network the caller cannot see, as the core would.
            self.seen[network_id] = self.core.networks.get(self.ctx, network_id)
        return self.seen[network_id]


def parse_list_query(request: Request, coll: Collection, hidden: frozenset[str] = frozenset()) -> ListQuery:
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
            raise HTTPBadRequest(
                f"Limit must be an integer 0 or greater and not '{shown_value(params['limit'])}'"
            ) from None
        if limit < 0:
            raise HTTPBadRequest(f"Limit must be an integer 0 or greater and not '{limit}'")
        if limit > MAX_PAGE_LIMIT:
            # Beyond what the database's LIMIT takes: refuse instead of a 500.
            raise InvalidInput(
                error_message=f"limit '{shown_value(params['limit'])}' is larger than {MAX_PAGE_LIMIT}"
            )
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
        # Filtering on what the caller may not read would reveal it.
        if spec is None or not spec.is_filter or key in hidden:
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
    member_name = coll.member
    get_rule = f"get_{member_name}"

    def service(request: Request) -> Any:
        if coll.service is not None:
            return coll.service
        return getattr(request.app.state.core, coll.service_name)

    def caller(request: Request) -> tuple[Context, CallerPolicy]:
        ctx = context_from(request)
        return ctx, request.app.state.policy.for_caller(ctx)

    def row_check(request: Request, ctx: Context, pol: CallerPolicy) -> Callable[[Mapping[str, Any]], bool] | None:
        """A per-row ``get_<resource>`` check, only when the operator changed that rule.

        The default rule is what the core's visibility filter already applies
        in SQL; a caller-only rule was decided once (403) before the query.
        """
        if get_rule not in pol.policy.overridden or pol.caller_only(get_rule):
            return None
        networks = _Networks(request.app.state.core, Context.admin())
        return lambda item: pol.allowed(get_rule, LazyTarget(item, network=networks))

    def shape(
        request: Request, pol: CallerPolicy, items: list[dict[str, Any]], fields: list[str] | None
    ) -> list[dict[str, Any]]:
        networks = _Networks(request.app.state.core, Context.admin()) if pol.row_rules(member_name) else None
        return pol.view_all(member_name, items, fields, networks)

    async def list_or_create(request: Request) -> Response:
        ctx, pol = caller(request)
        if request.method == "GET":
            if pol.caller_only(get_rule):
                pol.enforce(get_rule)
            q = parse_list_query(request, coll, pol.hidden(member_name))
            visible = row_check(request, ctx, pol)

            def find() -> list[dict[str, Any]]:
                found = service(request).find(ctx, q)
                if visible is not None:
                    found = [i for i in found if visible(i)]
                if q.page_reverse:
                    found = list(reversed(found))
                return found

            items = await run_in_threadpool(find)
            payload: dict[str, Any] = {coll.plural: shape(request, pol, items, q.fields)}
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
        if len(raw_items) > LIMITS.max_bulk_items:
            # One bulk is one transaction: an unbounded one would hold the write path.
            raise HTTPBadRequest(
                f"Bulk create of {len(raw_items)} {coll.plural} exceeds the limit of {LIMITS.max_bulk_items}"
            )
        items = [validate_body(coll.attrs, it, resource=coll.member, for_create=True) for it in raw_items]
        if (ctx.project_id is None and not ctx.is_agent and "project_id" in coll.attrs
                and any(not (it.get("project_id") or it.get("tenant_id")) for it in items)):
            # Neutron's noauth rule: a caller with roles but no project must say whose it is.
            raise HTTPBadRequest("Running without keystone AuthN requires that tenant_id is specified")

        def authorize() -> None:
            networks = _Networks(request.app.state.core, ctx)
            for it in items:
                project = it.get("project_id") or it.get("tenant_id") or ctx.project_id
                target = LazyTarget({**it, "project_id": project, "tenant_id": project}, network=networks)
                pol.enforce_body(f"create_{member_name}", it, target, defaults=coll.defaults)

        if ctx.is_admin:
            authorize()  # the defaults never read the database for an admin
        else:
            await run_in_threadpool(authorize)
        svc = service(request)
        create_async = getattr(svc, "create_bulk_async", None)
        if create_async is not None:
            created = await create_async(ctx, items)
        else:
            created = await run_in_threadpool(svc.create_bulk, ctx, items)
        shown = shape(request, pol, created, None)
        if bulk:
            return JSON({coll.plural: shown}, status_code=201)
        return JSON({coll.member: shown[0]}, status_code=201)

    async def member(request: Request) -> Response:
        ctx, pol = caller(request)
        rid = request.path_params["id"]
        svc = service(request)
        networks = _Networks(request.app.state.core, ctx)

        def stored() -> Mapping[str, Any]:
            return svc.get(ctx, rid)  # type: ignore[no-any-return]

        if request.method == "GET":
            fields = [x for f in request.query_params.getlist("fields") for x in f.split(",") if x] or None
            if pol.caller_only(get_rule):
                pol.enforce(get_rule)
            visible = row_check(request, ctx, pol)

            def show() -> dict[str, Any]:
                item = svc.get(ctx, rid)
                if visible is not None and not visible(item):
                    raise _NOT_FOUND.get(member_name, lambda _r: ResourceNotFound())(rid)
                return item  # type: ignore[no-any-return]

            item = await run_in_threadpool(show)
            return JSON({coll.member: shape(request, pol, [item], fields)[0]})
        if request.method == "PUT":
            if not coll.allow_update:
                raise HTTPBadRequest(f"Updating {coll.plural} is not supported")
            body = await json_body(request)
            if not isinstance(body, dict) or set(body) != {coll.member}:
                raise HTTPBadRequest(f"Unable to find '{coll.member}' in request body")
            attrs = validate_body(coll.attrs, body[coll.member], resource=coll.member, for_create=False)
            rev = if_match_revision(request)

            def update() -> dict[str, Any]:
                # Neutron's target: the stored resource with the new values applied.
                target = LazyTarget(attrs, load=stored, network=networks)
                pol.enforce_body(f"update_{member_name}", attrs, target)
                return svc.update(ctx, rid, attrs, if_revision=rev)  # type: ignore[no-any-return]

            item = await run_in_threadpool(update)
            return JSON({coll.member: shape(request, pol, [item], None)[0]})
        if not coll.allow_delete:
            raise HTTPBadRequest(f"Deleting {coll.plural} is not supported")
        rev = if_match_revision(request)

        def delete() -> None:
            pol.enforce(f"delete_{member_name}", LazyTarget(load=stored, network=networks))
            svc.delete(ctx, rid, if_revision=rev)

        await run_in_threadpool(delete)
        return Response(status_code=204)

    async def action(request: Request) -> Response:
        ctx, pol = caller(request)
        rid, name = request.path_params["id"], request.path_params["action"]
        run = coll.actions.get(name)
        if run is None:
            raise HTTPException(404)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise HTTPBadRequest(f"Body of '{name}' must be an object")
        svc = service(request)

        def call() -> dict[str, Any]:
            # Neutron's rule for a member action is its name (``add_router_interface``).
            pol.enforce(name, LazyTarget(load=lambda: svc.get(ctx, rid)))
            return run(ctx, rid, body)

        return JSON(await run_in_threadpool(call))

    url = coll.path or coll.plural
    out = [
        Route(f"/v2.0/{url}", list_or_create, methods=["GET", "POST"]),
        Route(f"/v2.0/{url}.json", list_or_create, methods=["GET", "POST"]),
        Route(f"/v2.0/{url}/{{id}}", member, methods=["GET", "PUT", "DELETE"]),
        Route(f"/v2.0/{url}/{{id}}.json", member, methods=["GET", "PUT", "DELETE"]),
    ]
    if coll.actions:
        out.append(Route(f"/v2.0/{url}/{{id}}/{{action}}", action, methods=["PUT"]))
    if coll.has_tags:
        out.extend(tag_routes(coll))
    return out


def tag_routes(coll: Collection) -> list[Route]:
    def authorized(request: Request, verb: str) -> tuple[Context, Callable[[], None]]:
        """The caller, and the check of ``<verb>_<plural>_tags`` against the tagged resource."""
        ctx = context_from(request)
        pol = request.app.state.policy.for_caller(ctx)
        svc = getattr(request.app.state.core, coll.service_name)
        rid = request.path_params["id"]

        def check() -> None:
            pol.enforce(f"{verb}_{coll.plural}_tags", LazyTarget(load=lambda: svc.get(ctx, rid)))

        return ctx, check

    async def all_tags(request: Request) -> Response:
        tags = request.app.state.core.tags
        rid = request.path_params["id"]
        if request.method == "GET":
            ctx = context_from(request)
            return JSON({"tags": await run_in_threadpool(tags.get_all, ctx, coll.plural, rid)})
        if request.method == "PUT":
            ctx, check = authorized(request, "update")
            body = await json_body(request)
            if not isinstance(body, dict) or set(body) != {"tags"}:
                raise HTTPBadRequest("Unable to find 'tags' in request body")

            def replace() -> list[str]:
                check()
                return tags.replace(ctx, coll.plural, rid, body["tags"])  # type: ignore[no-any-return]

            return JSON({"tags": await run_in_threadpool(replace)})
        ctx, check = authorized(request, "delete")

        def remove_all() -> None:
            check()
            tags.remove_all(ctx, coll.plural, rid)

        await run_in_threadpool(remove_all)
        return Response(status_code=204)

    async def one_tag(request: Request) -> Response:
        tags = request.app.state.core.tags
        rid, tag = request.path_params["id"], request.path_params["tag"]
        if request.method == "GET":
            ctx = context_from(request)
            await run_in_threadpool(tags.has, ctx, coll.plural, rid, tag)
            return Response(status_code=204)
        verb = "create" if request.method == "PUT" else "delete"
        ctx, check = authorized(request, verb)
        op = tags.add if verb == "create" else tags.remove

        def change() -> None:
            check()
            op(ctx, coll.plural, rid, tag)

        await run_in_threadpool(change)
        return Response(status_code=201 if verb == "create" else 204)

    return [
        Route(f"/v2.0/{coll.path or coll.plural}/{{id}}/tags", all_tags, methods=["GET", "PUT", "DELETE"]),
        Route(f"/v2.0/{coll.path or coll.plural}/{{id}}/tags/{{tag}}", one_tag, methods=["GET", "PUT", "DELETE"]),
    ]
