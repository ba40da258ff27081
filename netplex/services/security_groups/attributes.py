"""Attribute maps of the security-group collections and of the attributes added to ports and networks."""

from __future__ import annotations

from typing import Any

from netplex.core.attr_map import REQUIRED, Attr, anything, string, to_bool, to_int, uuid_or_none, uuid_str

__all__ = ["NETWORK_EXTENSION", "PORT_EXTENSION", "SECURITY_GROUP", "SECURITY_GROUP_RULE"]


def _uuid_list_or_none(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"'{value}' is not a list")
    return list(dict.fromkeys(uuid_str(v) for v in value))


_STANDARD = {
    "id": Attr(convert=uuid_str, filter_convert=str),
    "description": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "project_id": Attr(allow_post=True, convert=string(255), default=REQUIRED),
    "tenant_id": Attr(allow_post=True, convert=string(255), default=REQUIRED),
    "revision_number": Attr(filter_convert=to_int),
    "created_at": Attr(is_filter=False),
    "updated_at": Attr(is_filter=False),
}

SECURITY_GROUP: dict[str, Attr] = {
    **_STANDARD,
    "name": Attr(allow_post=True, allow_put=True, default="", convert=string(255)),
    "stateful": Attr(allow_post=True, allow_put=True, default=True, convert=to_bool),
    "security_group_rules": Attr(is_filter=False),
    "shared": Attr(is_filter=False),
    "tags": Attr(is_filter=False),
}

SECURITY_GROUP_RULE: dict[str, Attr] = {
    **_STANDARD,
    "security_group_id": Attr(allow_post=True, default=REQUIRED, convert=uuid_str, filter_convert=str),
    # Values are checked by rules.check_rule, which raises Neutron's specific errors.
    "direction": Attr(allow_post=True, default=REQUIRED, convert=anything, filter_convert=str),
    "ethertype": Attr(allow_post=True, default="IPv4", convert=anything, filter_convert=str),
    "protocol": Attr(allow_post=True, default=None, convert=anything, filter_convert=str),
    "port_range_min": Attr(allow_post=True, default=None, convert=anything, filter_convert=to_int),
    "port_range_max": Attr(allow_post=True, default=None, convert=anything, filter_convert=to_int),
    "remote_ip_prefix": Attr(allow_post=True, default=None, convert=anything, filter_convert=str),
    "remote_group_id": Attr(allow_post=True, default=None, convert=uuid_or_none, filter_convert=str),
    "remote_address_group_id": Attr(allow_post=True, default=None, convert=uuid_or_none, filter_convert=str),
    "normalized_cidr": Attr(is_filter=False),
    "belongs_to_default_sg": Attr(is_filter=False),
}

PORT_EXTENSION: dict[str, Attr] = {
    "security_groups": Attr(allow_post=True, allow_put=True, default=None, convert=_uuid_list_or_none,
                            filter_convert=str),
    "port_security_enabled": Attr(allow_post=True, allow_put=True, default=None, convert=to_bool,
                                  filter_convert=to_bool),
}

NETWORK_EXTENSION: dict[str, Attr] = {
    "port_security_enabled": Attr(allow_post=True, allow_put=True, default=True, convert=to_bool,
                                  filter_convert=to_bool),
}
