"""DHCP agent scheduling and extra DHCP options

Revision ID: c3d1a0f2b7e4
Revises: a265e6abdc24
Create Date: 2026-12-03 15:15:00.000000
"""

from __future__ import annotations

revision = 'c3d1a0f2b7e4'
down_revision = 'a265e6abdc24'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
