"""``GET /v2.0/changes``: the change feed over HTTP, by long-poll.

``?after=REV`` returns every change with a larger revision, in order (at
most ``limit``). When there is none yet the request waits up to
``timeout`` seconds (default 25, max 60) for one. The answer carries
``revision``: resume with ``after=revision`` and nothing is missed or seen
twice. A caller too far behind gets ``410`` (``FeedCompacted``) and must
read a fresh snapshot, then watch from the snapshot's revision.

Long-poll rather than server-sent events: every HTTP client (including
the agents' plain httpx) handles it, proxies do not buffer it, and a
reconnect is the normal path rather than a special case.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from netplex.api.attributes import HTTPBadRequest
from netplex.api.http import context_from
from netplex.events.feed import Feed, FeedNotifier, SharedPages


def _int(request: Request, key: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise HTTPBadRequest(f"'{key}' must be an integer") from None
    if not lo <= v <= hi:
        raise HTTPBadRequest(f"'{key}' must be between {lo} and {hi}")
    return v


def feed_routes(feed: Feed, notifier: FeedNotifier) -> list[Route]:
    pages = SharedPages(feed, notifier)

    async def changes(request: Request) -> Response:
        request.app.state.policy.for_caller(context_from(request)).enforce("get_changes")
        after = _int(request, "after", 0, 0, 2**62)
        limit = _int(request, "limit", 1000, 1, 10000)
        timeout = _int(request, "timeout", 25, 0, 60)
        resources = frozenset(request.query_params.getlist("resource")) or None
        deadline = time.monotonic() + timeout
        while True:
            # Shared: every poll parked on the same revision gets the same
            # page, read and encoded once (see SharedPages).
            body, head, has_changes = await pages.page(after, limit, resources)
            remaining = deadline - time.monotonic()
            if has_changes or remaining <= 0 or notifier.closing or await request.is_disconnected():
                return Response(body, media_type="application/json")
            if head > after:
                after = head  # only filtered-out entries: move past them
            # Short slices: commits from other processes without NOTIFY
            # (SQLite with several workers) are still seen within a second.
            await notifier.wait_beyond(after, min(remaining, 1.0))

    return [Route("/v2.0/changes", changes, methods=["GET"])]
