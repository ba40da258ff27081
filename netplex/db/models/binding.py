"""Port bindings (one per host; one ACTIVE) and their hierarchical levels."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, Base


class PortBinding(Base):
    __tablename__ = "port_bindings"

    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    #: Indexed on its own for "every binding on this host" (rebinding failed
    #: ports when an agent appears, marking ports down when one dies).
    host: Mapped[str] = mapped_column(String(255), primary_key=True, default="", index=True)
    vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    profile: Mapped[dict] = mapped_column(default=dict)
    vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    vif_details: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    #: Why each mechanism driver did or did not bind, from the latest attempt.
    diagnostics: Mapped[list] = mapped_column(default=list)
    #: Bumped on every change of host/vnic_type/profile; a binding result
    #: computed for an older attempt is discarded.
    attempt: Mapped[int] = mapped_column(default=0)


class PortBindingLevel(Base):
    __tablename__ = "port_binding_levels"

    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    level: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    driver: Mapped[str] = mapped_column(String(64))
    segment_id: Mapped[str | None] = mapped_column(ID, default=None, index=True)
