"""Neutron's security-group errors: the class name is the ``type`` clients match on."""

from __future__ import annotations

from netplex.errors import BadRequest, Conflict, InUse, InvalidInput, NotFound


class SecurityGroupNotFound(NotFound):
    message = "Security group {id} does not exist"


class SecurityGroupRuleNotFound(NotFound):
    message = "Security group rule {id} does not exist"


class SecurityGroupRuleExists(Conflict):
    message = "Security group rule already exists. Rule id is {rule_id}."


class SecurityGroupInUse(InUse):
    message = "Security Group {id} in use."


class SecurityGroupCannotRemoveDefault(InUse):
    message = "Insufficient rights for removing default security group."


class SecurityGroupCannotUpdateDefault(InUse):
    message = "Updating default security group not allowed."


class SecurityGroupDefaultAlreadyExists(InUse):
    message = "Default security group already exists."


class SecurityGroupRuleInvalidProtocol(InvalidInput):
    message = "Security group rule protocol {protocol} not supported. Only protocol values {values} and " \
              "integer representations [0 to 255] are supported."


class SecurityGroupRuleInvalidEtherType(InvalidInput):
    message = "Security group rule for ethertype '{ethertype}' not supported. Allowed values are {values}."


class SecurityGroupRuleInvalidDirection(InvalidInput):
    message = "Security group rule direction '{direction}' not supported. Allowed values are ingress, egress."


class SecurityGroupInvalidPortRange(InvalidInput):
    message = "For TCP/UDP protocols, port_range_min must be <= port_range_max"


class SecurityGroupInvalidPortValue(InvalidInput):
    message = "Invalid value for port {port}"


class SecurityGroupInvalidIcmpValue(InvalidInput):
    message = "Invalid value for ICMP {field} (type or code) field: {attr}. It must be 0 to 255."


class SecurityGroupMissingIcmpType(InvalidInput):
    message = "ICMP code (port-range-max) {value} is provided but ICMP type (port-range-min) is missing."


class SecurityGroupInvalidProtocolForPortRange(InvalidInput):
    message = "Ports can only be specified for protocols that have them ({protocols}), not for {protocol}."


class SecurityGroupEthertypeConflictWithProtocol(InvalidInput):
    message = "Invalid ethertype {ethertype} for protocol {protocol}."


class SecurityGroupRuleParameterConflict(InvalidInput):
    message = "Conflicting value ethertype {ethertype} for CIDR {cidr}"


class SecurityGroupRemoteGroupAndRemoteIpPrefix(InvalidInput):
    message = "Only remote_ip_prefix or remote_group_id may be provided."


class SecurityGroupMultipleRemoteResources(BadRequest):
    message = "Only one of remote_ip_prefix, remote_group_id and remote_address_group_id may be provided."


class RemoteAddressGroupsNotBuilt(BadRequest):
    message = "Address groups are not built yet: remote_address_group_id must be null."


class PortSecurityAndIPRequiredForSecurityGroups(InvalidInput):
    message = "Port security must be enabled and port must have an IP address in order to use security groups."


class PortSecurityPortHasSecurityGroup(InUse):
    message = "Port has security group associated. Cannot disable port security or IP address until " \
              "security group is removed"


class AddressPairAndPortSecurityRequired(Conflict):
    message = "Port Security must be enabled in order to have allowed address pairs on a port."
