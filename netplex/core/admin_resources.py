"""Segments and agents as API collections (both admin-only, as in Neutron).

Thin services with the same shape as the network/port services
(``create_bulk``/``get``/``list``/``update``/``delete``) so the generic
collection routes serve them; the work is done by the type manager
(:mod:`netplex.core.segments`) and the agent service.
"""

from __future__ import annotations

import logging
from typing import Any

from netplex.core import segments as seg_api
from netplex.core.agents import AgentService
from netplex.core.binding import PortBindingService
from netplex.core.common import check_revision
from netplex.core.context import Context
from netplex.core.listing import ListQuery, python_filter
from netplex.core.networks import NetworkService
from netplex.core.type_manager import TypeManager
from netplex.db.engine import Database, Txn
from netplex.errors import BadRequest

LOG = logging.getLogger(__name__)


def _sort_page(items: list[dict[str, Any]], query: ListQuery, resource: str) -> list[dict[str, Any]]:
    """Sorting and marker paging in Python for the small admin collections."""
    keys = list(query.sorts) or [("id", True)]
    for key, asc in reversed(keys):

        def sort_key(item: dict[str, Any], k: str = key) -> tuple[bool, Any]:
            return (item.get(k) is None, item.get(k))

        items.sort(key=sort_key, reverse=not asc)
    if query.page_reverse:
        items.reverse()
    if query.marker is not None:
        ids = [i["id"] for i in items]
        if query.marker not in ids:
            raise BadRequest(resource=resource, msg=f"marker {query.marker} not found")
        items = items[ids.index(query.marker) + 1 :]
    if query.limit is not None:
        items = items[: query.limit]
    return items


class SegmentResource:
    def __init__(self, db: Database, types: TypeManager, networks: NetworkService) -> None:
        self.db = db
        self.types = types
        self.networks = networks

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        with self.db.read() as s:
            nets = query.filters.get("network_id")
            items = seg_api.list_segments(s, network_ids=nets)
        rest = {k: v for k, v in query.filters.items() if k != "network_id"}
        return _sort_page(python_filter(items, rest), query, "segment")

    def get(self, ctx: Context, segment_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return seg_api.get_segment(s, segment_id)

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:

        def fn(txn: Txn) -> list[dict[str, Any]]:
            out = []
            for attrs in items:
                seg = seg_api.create_segment(txn.session, self.types, attrs)
                txn.record("segment", seg["id"], "create", seg)
                self.networks.touched(txn, seg["network_id"])
                out.append(seg)
            return out

        return self.db.transaction(fn)

    def update(
        self, ctx: Context, segment_id: str, attrs: dict[str, Any], *, if_revision: int | None = None
    ) -> dict[str, Any]:

        def fn(txn: Txn) -> dict[str, Any]:
            check_revision(if_revision, seg_api.get_segment(txn.session, segment_id)["revision_number"])
            seg = seg_api.update_segment(txn.session, segment_id, attrs)
            txn.record("segment", segment_id, "update", seg)
            return seg

        return self.db.transaction(fn)

    def delete(self, ctx: Context, segment_id: str, *, if_revision: int | None = None) -> None:

        def fn(txn: Txn) -> None:
            seg = seg_api.get_segment(txn.session, segment_id)
            check_revision(if_revision, seg["revision_number"])
            seg_api.delete_segment(txn.session, self.types, segment_id)
            txn.record("segment", segment_id, "delete", seg)
            self.networks.touched(txn, seg["network_id"])

        self.db.transaction(fn)


class AgentResource:
    def __init__(self, db: Database, agents: AgentService, bindings: PortBindingService) -> None:
        self.db = db
        self.agents = agents
        self.bindings = bindings

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        host = query.filters.get("host")
        agent_type = query.filters.get("agent_type")
        with self.db.read() as s:
            items = self.agents.list_agents(
                s,
                host=host[0] if host and len(host) == 1 else None,
                agent_type=agent_type[0] if agent_type and len(agent_type) == 1 else None,
            )
        return _sort_page(python_filter(items, query.filters), query, "agent")

    def get(self, ctx: Context, agent_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return self.agents.get_agent(s, agent_id)

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise BadRequest(resource="agent", msg="agents register themselves; they cannot be created")

    def update(
        self, ctx: Context, agent_id: str, attrs: dict[str, Any], *, if_revision: int | None = None
    ) -> dict[str, Any]:
        change = self.db.transaction(lambda txn: self.agents.update_agent(txn, agent_id, attrs))
        self.bindings.agent_changed(change)
        return self.get(ctx, agent_id)

    def report(self, state: dict[str, Any]) -> dict[str, Any]:
        """Register or heartbeat; re-binds the host's failed ports when that may help now."""
        change = self.db.transaction(lambda txn: self.agents.report_state(txn, state))
        self.bindings.agent_changed(change)
        return change.agent

    def delete(self, ctx: Context, agent_id: str, *, if_revision: int | None = None) -> None:
        self.db.transaction(lambda txn: self.agents.delete_agent(txn, agent_id))
