"""DHCP agent scheduling and extra DHCP options

Revision ID: c3d1a0f2b7e4
Revises: a265e6abdc24
Create Date: 2026-12-03 15:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'c3d1a0f2b7e4'
down_revision = 'a265e6abdc24'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_dhcp_agent_bindings',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('dhcp_agent_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['dhcp_agent_id'], ['agents.id'],
                            name=op.f('fk_network_dhcp_agent_bindings_dhcp_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'],
                            name=op.f('fk_network_dhcp_agent_bindings_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_id', 'dhcp_agent_id', name=op.f('pk_network_dhcp_agent_bindings'))
    )
    with op.batch_alter_table('network_dhcp_agent_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_dhcp_agent_bindings_dhcp_agent_id'), ['dhcp_agent_id'],
                              unique=False)

    op.create_table('extra_dhcp_opts',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('opt_name', sa.String(length=64), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('opt_value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_extra_dhcp_opts_port_id_ports'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', 'opt_name', 'ip_version', name=op.f('pk_extra_dhcp_opts'))
    )


def downgrade() -> None:
    op.drop_table('extra_dhcp_opts')
    with op.batch_alter_table('network_dhcp_agent_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_dhcp_agent_bindings_dhcp_agent_id'))
    op.drop_table('network_dhcp_agent_bindings')
