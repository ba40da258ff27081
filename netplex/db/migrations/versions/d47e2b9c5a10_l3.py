"""routers, external networks and floating IPs

Revision ID: d47e2b9c5a10
Revises: c3d1a0f2b7e4
Create Date: 2026-12-03 15:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import netplex.db.base

revision = 'd47e2b9c5a10'
down_revision = 'c3d1a0f2b7e4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('external_networks',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_external_networks_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_id', name=op.f('pk_external_networks'))
    )
    op.create_table('routers',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gw_port_id', sa.String(length=36), nullable=True),
    sa.Column('enable_snat', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.Column('created_at', netplex.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', netplex.db.base.UTCDateTime(), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['gw_port_id'], ['ports.id'], name=op.f('fk_routers_gw_port_id_ports'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routers'))
    )
    op.create_index(op.f('ix_routers_gw_port_id'), 'routers', ['gw_port_id'], unique=False)
    op.create_index(op.f('ix_routers_project_id'), 'routers', ['project_id'], unique=False)
    op.create_table('floatingips',
    sa.Column('floating_ip_address', sa.String(length=64), nullable=False),
    sa.Column('floating_network_id', sa.String(length=36), nullable=False),
    sa.Column('floating_port_id', sa.String(length=36), nullable=False),
    sa.Column('fixed_port_id', sa.String(length=36), nullable=True),
    sa.Column('fixed_ip_address', sa.String(length=64), nullable=True),
    sa.Column('router_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.Column('created_at', netplex.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', netplex.db.base.UTCDateTime(), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['fixed_port_id'], ['ports.id'], name=op.f('fk_floatingips_fixed_port_id_ports'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['floating_network_id'], ['networks.id'], name=op.f('fk_floatingips_floating_network_id_networks'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['floating_port_id'], ['ports.id'], name=op.f('fk_floatingips_floating_port_id_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], name=op.f('fk_floatingips_router_id_routers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_floatingips')),
    sa.UniqueConstraint('floating_network_id', 'fixed_port_id', 'fixed_ip_address', name='uq_floatingips_fixed_association'),
    sa.UniqueConstraint('floating_port_id', name=op.f('uq_floatingips_floating_port_id'))
    )
    op.create_index(op.f('ix_floatingips_fixed_port_id'), 'floatingips', ['fixed_port_id'], unique=False)
    op.create_index(op.f('ix_floatingips_floating_network_id'), 'floatingips', ['floating_network_id'], unique=False)
    op.create_index(op.f('ix_floatingips_project_id'), 'floatingips', ['project_id'], unique=False)
    op.create_index(op.f('ix_floatingips_router_id'), 'floatingips', ['router_id'], unique=False)
    op.create_table('router_l3_agent_bindings',
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('l3_agent_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['l3_agent_id'], ['agents.id'], name=op.f('fk_router_l3_agent_bindings_l3_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], name=op.f('fk_router_l3_agent_bindings_router_id_routers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('router_id', name=op.f('pk_router_l3_agent_bindings'))
    )
    op.create_index(op.f('ix_router_l3_agent_bindings_l3_agent_id'), 'router_l3_agent_bindings', ['l3_agent_id'], unique=False)
    op.create_table('router_ports',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('port_type', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_router_ports_port_id_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], name=op.f('fk_router_ports_router_id_routers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', name=op.f('pk_router_ports'))
    )
    op.create_index(op.f('ix_router_ports_router_id'), 'router_ports', ['router_id'], unique=False)
    op.create_table('router_routes',
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('nexthop', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], name=op.f('fk_router_routes_router_id_routers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('router_id', 'destination', 'nexthop', name=op.f('pk_router_routes'))
    )


def downgrade() -> None:
    op.drop_table('router_routes')
    op.drop_index(op.f('ix_router_ports_router_id'), table_name='router_ports')
    op.drop_table('router_ports')
    op.drop_index(op.f('ix_router_l3_agent_bindings_l3_agent_id'), table_name='router_l3_agent_bindings')
    op.drop_table('router_l3_agent_bindings')
    op.drop_index(op.f('ix_floatingips_router_id'), table_name='floatingips')
    op.drop_index(op.f('ix_floatingips_project_id'), table_name='floatingips')
    op.drop_index(op.f('ix_floatingips_floating_network_id'), table_name='floatingips')
    op.drop_index(op.f('ix_floatingips_fixed_port_id'), table_name='floatingips')
    op.drop_table('floatingips')
    op.drop_index(op.f('ix_routers_project_id'), table_name='routers')
    op.drop_index(op.f('ix_routers_gw_port_id'), table_name='routers')
    op.drop_table('routers')
    op.drop_table('external_networks')
