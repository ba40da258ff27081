"""The ``/tags`` sub-resource of networks, subnets and ports."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from netplex.core.context import Context
from netplex.db.engine import Database, Txn
from netplex.db.models import Tag
from netplex.errors import InvalidInput, TagNotFound

MAX_TAG_LEN = 255
MAX_TAGS = 50


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LEN or "," in tag:
        raise InvalidInput(error_message=f"'{tag}' is not a valid tag")
    return tag


class Tagged(Protocol):
    """What tags need of a tagged collection's service (networks, subnets, ports)."""

    def get_row(self, s: Session, ctx: Context, rid: str) -> Any: ...

    def touched(self, txn: Txn, rid: str) -> None:
        """The resource changed (its tags): new revision, and its new view on the feed."""
        ...


class TagService:
    """Tags of the collections named in ``collections`` ("networks" -> its service, ...)."""

    def __init__(self, db: Database, collections: dict[str, Tagged]) -> None:
        self.db = db
        self.collections = dict(collections)

    def _service(self, collection: str) -> Tagged:
        return self.collections[collection]

    def _owned_row(self, s: Session, ctx: Context, collection: str, rid: str) -> Any:
        # Visibility only: who may change tags is policy ({verb}_{plural}_tags, api/policy.py).
        return self._service(collection).get_row(s, ctx, rid)

    def _current(self, s: Session, collection: str, rid: str) -> list[str]:
        return list(
            s.execute(
                select(Tag.tag).where(Tag.resource_type == collection, Tag.resource_id == rid).order_by(Tag.tag)
            ).scalars()
        )

    def get_all(self, ctx: Context, collection: str, rid: str) -> list[str]:
        with self.db.read() as s:
            self._service(collection).get_row(s, ctx, rid)
            return self._current(s, collection, rid)

    def has(self, ctx: Context, collection: str, rid: str, tag: str) -> None:
        if tag not in self.get_all(ctx, collection, rid):
            raise TagNotFound(tag=tag)

    def _write(
        self,
        ctx: Context,
        collection: str,
        rid: str,
        new: list[str] | None,
        add: str | None = None,
        remove: str | None = None,
    ) -> list[str]:
        def fn(txn: Txn) -> list[str]:
            s = txn.session
            row = self._owned_row(s, ctx, collection, rid)
            tags = self._current(s, collection, rid)
            target = list(tags)
            if new is not None:
                target = sorted(set(new))
            if add is not None and add not in target:
                target = sorted([*target, add])
            if remove is not None:
                if remove not in target:
                    raise TagNotFound(tag=remove)
                target.remove(remove)
            if len(target) > MAX_TAGS:
                raise InvalidInput(error_message=f"At most {MAX_TAGS} tags per resource")
            if target == tags:
                return target
            s.execute(delete(Tag).where(Tag.resource_type == collection, Tag.resource_id == rid))
            for t in target:
                s.add(Tag(resource_type=collection, resource_id=rid, tag=t))
            self._service(collection).touched(txn, row.id)
            return target

        return self.db.transaction(fn)

    def replace(self, ctx: Context, collection: str, rid: str, tags: Any) -> list[str]:
        if not isinstance(tags, list):
            raise InvalidInput(error_message="'tags' must be a list")
        return self._write(ctx, collection, rid, [check_tag(t) for t in tags])

    def add(self, ctx: Context, collection: str, rid: str, tag: str) -> None:
        self._write(ctx, collection, rid, None, add=check_tag(tag))

    def remove(self, ctx: Context, collection: str, rid: str, tag: str) -> None:
        self._write(ctx, collection, rid, None, remove=tag)

    def remove_all(self, ctx: Context, collection: str, rid: str) -> None:
        self._write(ctx, collection, rid, [])
