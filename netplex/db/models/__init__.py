"""All tables. Importing this package registers every model on ``Base.metadata``."""

from netplex.db.models import dhcp, l3, quota  # noqa: F401  (each registers its own tables)
from netplex.db.models.agent import Agent
from netplex.db.models.binding import PortBinding, PortBindingLevel
from netplex.db.models.feed import Change, FeedHead
from netplex.db.models.network import Network, NetworkSegment, SegmentAllocation
from netplex.db.models.port import IPAllocation, Port
from netplex.db.models.security_group import (
    DefaultSecurityGroup,
    NetworkSecurity,
    PortSecurity,
    SecurityGroup,
    SecurityGroupPortBinding,
    SecurityGroupRule,
)
from netplex.db.models.subnet import Subnet
from netplex.db.models.tag import Tag

__all__ = [
    "Agent",
    "Change",
    "DefaultSecurityGroup",
    "FeedHead",
    "IPAllocation",
    "Network",
    "NetworkSecurity",
    "NetworkSegment",
    "Port",
    "PortBinding",
    "PortBindingLevel",
    "PortSecurity",
    "SecurityGroup",
    "SecurityGroupPortBinding",
    "SecurityGroupRule",
    "SegmentAllocation",
    "Subnet",
    "Tag",
]
