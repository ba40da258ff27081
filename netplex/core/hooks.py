"""The seam between resource services and the mechanism layer.

Services call :class:`ResourceHooks` at the two ML2 points of every
create/update/delete: ``precommit`` inside the transaction (raising rolls
it back) and ``postcommit`` after it (raising on create undoes the
create). :mod:`netplex.core.mech_hooks` adapts the mechanism manager
to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from netplex.core.segments_model import Segment


class ResourceHooks(Protocol):
    def wants(self, resource: str, event: str) -> bool:
        """Whether ``{event}_{resource}_pre/postcommit`` does anything: callers skip
        building contexts (and reading segments) for nobody."""
        ...

    def precommit(
        self,
        session: Session,
        event: str,
        resource: str,
        current: dict[str, Any],
        original: dict[str, Any] | None,
        segments: Sequence[Segment],
    ) -> None: ...

    def postcommit(
        self,
        event: str,
        resource: str,
        current: dict[str, Any],
        original: dict[str, Any] | None,
        segments: Sequence[Segment],
    ) -> None: ...
