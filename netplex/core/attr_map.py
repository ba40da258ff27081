"""Declarative attribute maps, the data half: the :class:`Attr` record and the value converters.

An attribute map says, per attribute of a resource, what a request may send and
what a response shows, in the shape of neutron-lib's maps (``allow_post`` /
``allow_put`` / ``default`` / ``is_visible`` / ``is_filter``); who may set or see an
attribute is policy (``api/policy.py``), not part of the map.
Converters turn JSON (and query-string) values into typed values or raise
:class:`ValueError` with the reason. This module is plain data and pure
functions, so the core's own resources (``api/attributes.py``) and service
plugins (:mod:`netplex.core.service_api`) describe their attributes the same
way; the API layer applies them (validation, 400s, views).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import netaddr

__all__ = [
    "REQUIRED",
    "Attr",
    "Converter",
    "anything",
    "dict_or_none",
    "ip_or_none",
    "LIMITS",
    "Limits",
    "host_id",
    "list_of",
    "mac_address",
    "shown",
    "mtu",
    "one_of",
    "string",
    "to_bool",
    "to_int",
    "uuid_or_none",
    "uuid_str",
]

class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class Attr:
    allow_post: bool = False
    allow_put: bool = False
    default: Any = None
    convert: Converter | None = None
    #: How a query-string value becomes a filter value (defaults to ``convert``).
    filter_convert: Converter | None = None
    is_visible: bool = True
    is_filter: bool = True


# -- limits -------------------------------------------------------------------


@dataclass
class Limits:
    """Caps on list attributes, with Neutron's option names and defaults ([DEFAULT]).

    One mutable instance (:data:`LIMITS`) is read when a request is validated,
    so the server can apply the operator's values at start-up; a cap is checked
    before any item is looked at, so an oversized list costs O(1) to refuse.
    """

    max_allowed_address_pair: int = 10
    max_subnet_host_routes: int = 20
    max_dns_nameservers: int = 5
    #: Netplex's own: items in one bulk create (Neutron has no cap; one bulk is
    #: one transaction, and 1,000 ports commit in well under a second).
    max_bulk_items: int = 1000


LIMITS = Limits()

#: Largest ``limit=`` a list accepts: the signed 32-bit range, which every
#: database's LIMIT takes (SQLite and PostgreSQL take 64 bits; no page is bigger).
MAX_PAGE_LIMIT = 2**31 - 1

#: How much of a bad value an error message repeats (a 10 MB value is never echoed).
SHOWN_CHARS = 64


def shown(value: Any) -> str:
    """A bad value as an error message repeats it: at most :data:`SHOWN_CHARS` characters."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > SHOWN_CHARS:
        return f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"
    return text


# -- converters ---------------------------------------------------------------


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"'{shown(value)}' cannot be converted to boolean")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"'{shown(value)}' is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"'{shown(value)}' is not an integer") from None


def string(max_len: int = 255, *, nullable: bool = False) -> Converter:
    def conv(value: Any) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise ValueError(f"'{shown(value)}' is not a valid string")
        if len(value) > max_len:
            raise ValueError(f"'{shown(value)}' exceeds maximum length of {max_len}")
        return value

    return conv


def uuid_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"'{shown(value)}' is not a valid UUID")
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(f"'{shown(value)}' is not a valid UUID") from None
    return value


def uuid_or_none(value: Any) -> str | None:
    return None if value is None else uuid_str(value)


def one_of(*choices: Any, nullable: bool = False) -> Converter:
    def conv(value: Any) -> Any:
        if value is None and nullable:
            return None
        if value not in choices:
            raise ValueError(f"'{shown(value)}' is not in {list(choices)}")
        return value

    return conv


def list_of(
    item: Converter | None = None,
    *,
    limit: str | None = None,
    too_many: Callable[[int], Exception] | None = None,
) -> Converter:
    """A list (of ``item``); ``limit`` names a :class:`Limits` field checked first.

    Over the cap, ``too_many(cap)`` is raised (Neutron's ``*Exhausted`` errors)
    or, without it, a :class:`ValueError`.
    """

    def conv(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValueError(f"'{shown(value)}' is not a list")
        if limit is not None:
            cap = getattr(LIMITS, limit)
            if cap >= 0 and len(value) > cap:
                if too_many is not None:
                    raise too_many(cap)
                raise ValueError(f"{len(value)} items exceed the limit of {cap}")
        return [item(v) for v in value] if item else value

    return conv


def _no_control_chars(value: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"'{shown(value)}' contains control characters")


def host_id(value: Any) -> str | None:
    """``binding:host_id``: a string of at most 255 characters without control characters."""
    if value is None:
        return None
    text = string(255)(value)
    assert text is not None
    _no_control_chars(text)
    return text


#: Neutron refuses these two even though they are well-formed.
_INVALID_MACS = (netaddr.EUI("00:00:00:00:00:00"), netaddr.EUI("ff:ff:ff:ff:ff:ff"))


def mac_address(value: Any) -> str:
    """A MAC in a notation Neutron accepts (netaddr's EUI-48 string forms, no whitespace).

    A bare number such as ``"12"`` is refused (netaddr would read it as
    ``00:00:00:00:00:0c``), as are the all-zero and broadcast addresses.
    """
    bad = ValueError(f"'{shown(value)}' is not a valid MAC address")
    if not isinstance(value, str) or value != value.strip() or any(c.isspace() for c in value):
        raise bad
    if not netaddr.valid_mac(value):
        raise bad
    if netaddr.EUI(value) in _INVALID_MACS:
        raise bad
    return value


def dict_or_none(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"'{shown(value)}' is not a dictionary")
    return value


def anything(value: Any) -> Any:
    return value


def ip_or_none(value: Any) -> Any:
    # Full validation (version, network/broadcast) happens in IPAM with context.
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{shown(value)}' is not a valid IP address")
    return value


def mtu(value: Any) -> int:
    n = to_int(value)
    if n < 68:
        raise ValueError(f"'{n}' is not a valid MTU (minimum 68)")
    return n

