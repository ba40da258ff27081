"""per-project quotas

Revision ID: e58f3cad6b21
Revises: d47e2b9c5a10
Create Date: 2026-12-03 15:15:00.000000
"""

from __future__ import annotations

revision = 'e58f3cad6b21'
down_revision = 'd47e2b9c5a10'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
