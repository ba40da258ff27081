"""Who is calling: the project and roles a request acts for."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    """The caller. ``project_id`` is None only for admin/internal callers."""

    project_id: str | None = None
    user_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    #: True for agents authenticated with the shared agent token.
    is_agent: bool = False

    @classmethod
    def admin(cls) -> Context:
        return cls(is_admin=True, roles=frozenset({"admin"}))

    @classmethod
    def project(cls, project_id: str, *roles: str) -> Context:
        r = frozenset(roles or ("member",))
        return cls(project_id=project_id, roles=r, is_admin="admin" in r)

    def owns(self, project_id: str | None) -> bool:
        return self.is_admin or (project_id is not None and project_id == self.project_id)
