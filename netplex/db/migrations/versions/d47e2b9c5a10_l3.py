"""routers, external networks and floating IPs

Revision ID: d47e2b9c5a10
Revises: c3d1a0f2b7e4
Create Date: 2026-12-03 15:15:00.000000
"""

from __future__ import annotations

revision = 'd47e2b9c5a10'
down_revision = 'c3d1a0f2b7e4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
