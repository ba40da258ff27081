"""The error tree. The API turns each into Neutron's ``NeutronError`` body.

::

    NetplexError (500)
    ├── BadRequest (400)
    │   ├── InvalidInput
    │   ├── InvalidAllocationPool, OverlappingAllocationPools, OutOfBoundsAllocationPool
    │   └── InvalidIpForSubnet, InvalidIpForNetwork, ...
    ├── NotAuthorized (403) ── PolicyNotAuthorized
    ├── NotFound (404) ── NetworkNotFound, SubnetNotFound, PortNotFound, ...
    ├── Conflict (409)
    │   ├── InUse ── NetworkInUse, SubnetInUse, IpAddressInUse, MacAddressInUse, ...
    │   ├── IpAddressGenerationFailure, SegmentationIdInUse, ...
    ├── PreconditionFailed (412) ── RevisionNumberConstraintFailed
    └── ServiceUnavailable (503) ── NoNetworkAvailable

The ``type`` in the body is the class name, as in Neutron, so clients that
match on it keep working.
"""

from __future__ import annotations

from typing import Any, ClassVar


class NetplexError(Exception):
    status: ClassVar[int] = 500
    message: ClassVar[str] = "An unknown exception occurred."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.message.format(**kwargs)
            except (KeyError, IndexError):
                message = self.message
        self.msg = message
        super().__init__(message)

    @property
    def type(self) -> str:
        return type(self).__name__


class RetryRequest(Exception):
    """Raised inside a transaction to make the DB layer run it again."""


# --- 400 -------------------------------------------------------------------


class BadRequest(NetplexError):
    status = 400
    message = "Bad {resource} request: {msg}."


class InvalidInput(BadRequest):
    message = "Invalid input for operation: {error_message}."


class AllowedAddressPairExhausted(BadRequest):
    message = "Maximum number of allowed address pairs is {quota}."


class HostRoutesExhausted(BadRequest):
    message = "Unable to complete operation for {subnet_id}. The number of host routes exceeds the limit {quota}."


class DNSNameServersExhausted(BadRequest):
    message = (
        "Unable to complete operation for {subnet_id}. The number of DNS nameservers exceeds the limit {quota}."
    )


class RequestEntityTooLarge(NetplexError):
    """A body larger than the configured cap (read no further than the cap)."""

    status = 413
    message = "Request is too large: the body exceeds {limit} bytes."


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool {pool} is not valid."


class OverlappingAllocationPools(BadRequest):
    message = "Found overlapping allocation pools: {pool_1} {pool_2} for subnet {subnet_cidr}."


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool {pool} spans beyond the subnet cidr {subnet_cidr}."


class InvalidIpForSubnet(BadRequest):
    message = "IP address {ip_address} is not a valid IP for the specified subnet."


class InvalidIpForNetwork(BadRequest):
    message = "IP address {ip_address} is not a valid IP for any of the subnets on the network."


class PortBindingError(NetplexError):
    status = 500
    message = "Binding failed for port {port_id}: {reason}"


# --- 403 -------------------------------------------------------------------


class NotAuthorized(NetplexError):
    status = 403
    message = "Not authorized."


class PolicyNotAuthorized(NotAuthorized):
    message = "({action}) is disallowed by policy"


class AdminRequired(NotAuthorized):
    message = "User does not have admin privileges: {reason}."


# --- 404 -------------------------------------------------------------------


class NotFound(NetplexError):
    status = 404
    message = "An unknown exception occurred."


class NetworkNotFound(NotFound):
    message = "Network {net_id} could not be found."


class SubnetNotFound(NotFound):
    message = "Subnet {subnet_id} could not be found."


class PortNotFound(NotFound):
    message = "Port {port_id} could not be found."


class SegmentNotFound(NotFound):
    message = "Segment {segment_id} could not be found."


class AgentNotFound(NotFound):
    message = "Agent {id} could not be found."


class PortBindingNotFound(NotFound):
    message = "Binding for port {port_id} for host {host} could not be found."


class TagNotFound(NotFound):
    message = "Tag {tag} could not be found."


class ResourceNotFound(NotFound):
    message = "The resource could not be found."


# --- 409 -------------------------------------------------------------------


class Conflict(NetplexError):
    status = 409
    message = "A conflict occurred."


class InUse(Conflict):
    message = "The resource is in use."


class NetworkInUse(InUse):
    message = (
        "Unable to complete operation on network {net_id}. There are one or more ports still in use on the network."
    )


class SubnetInUse(InUse):
    message = "Unable to complete operation on subnet {subnet_id}: {reason}"


class PortInUse(InUse):
    message = (
        "Unable to complete operation on port {port_id} for network {net_id}. "
        "Port already has an attached device {device_id}."
    )


class IpAddressInUse(InUse):
    message = "Unable to complete operation for network {net_id}. The IP address {ip_address} is in use."


class IpAddressAlreadyAllocated(Conflict):
    message = "IP address {ip} already allocated in subnet {subnet_id}"


class MacAddressInUse(InUse):
    message = "Unable to complete operation for network {net_id}. The mac address {mac} is in use."


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network {net_id}."


class GatewayConflictWithAllocationPools(Conflict):
    message = "Gateway ip {ip_address} conflicts with allocation pool {pool}"


class SegmentationIdInUse(InUse):
    message = (
        "Unable to create the network. The {network_type} segmentation ID "
        "{segmentation_id} on physical network {physical_network} is in use."
    )


class TunnelIdInUse(InUse):
    message = "Unable to create the network. The tunnel ID {tunnel_id} is in use."


class FlatNetworkInUse(InUse):
    message = "Unable to create the flat network. Physical network {physical_network} is in use."


class SegmentInUse(InUse):
    message = "Segment '{segment_id}' cannot be deleted: {reason}"


class InvalidSharedSetting(Conflict):
    message = "Unable to reconfigure sharing settings for network {network}. {reason}"


class AgentExists(Conflict):
    message = "Agent with agent_type={agent_type} and host={host} already exists."


class PortBindingAlreadyExists(Conflict):
    message = "Binding for port {port_id} on host {host} already exists."


class PortBindingAlreadyActive(Conflict):
    message = "Binding for port {port_id} on host {host} is already active."


class InvalidState(Conflict):
    message = "{reason}"


# --- 412 / 503 ---------------------------------------------------------------


class PreconditionFailed(NetplexError):
    status = 412
    message = "Precondition failed."


class RevisionNumberConstraintFailed(PreconditionFailed):
    message = "Constrained to {expected}, but current revision is {current}"


class ServiceUnavailable(NetplexError):
    status = 503
    message = "The service is unavailable."


class NoNetworkAvailable(ServiceUnavailable):
    message = "Unable to create the network. No tenant network is available for allocation."


class MechanismDriverError(NetplexError):
    status = 500
    message = "{method} failed: {reason}"
