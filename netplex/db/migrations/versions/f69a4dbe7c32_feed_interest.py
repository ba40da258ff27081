"""feed: per-host interest

Revision ID: f69a4dbe7c32
Revises: e58f3cad6b21
Create Date: 2026-12-03 15:15:00.000000
"""

from __future__ import annotations

revision = 'f69a4dbe7c32'
down_revision = 'e58f3cad6b21'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
