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

__all__ = [
    "REQUIRED",
    "Attr",
    "Converter",
    "anything",
    "dict_or_none",
    "ip_or_none",
    "list_of",
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


# -- converters ---------------------------------------------------------------


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"'{value}' cannot be converted to boolean")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"'{value}' is not an integer") from None


def string(max_len: int = 255, *, nullable: bool = False) -> Converter:
    def conv(value: Any) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise ValueError(f"'{value}' is not a valid string")
        if len(value) > max_len:
            raise ValueError(f"'{value}' exceeds maximum length of {max_len}")
        return value

    return conv


def uuid_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"'{value}' is not a valid UUID")
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a valid UUID") from None
    return value


def uuid_or_none(value: Any) -> str | None:
    return None if value is None else uuid_str(value)


def one_of(*choices: Any, nullable: bool = False) -> Converter:
    def conv(value: Any) -> Any:
        if value is None and nullable:
            return None
        if value not in choices:
            raise ValueError(f"'{value}' is not in {list(choices)}")
        return value

    return conv


def list_of(item: Converter | None = None) -> Converter:
    def conv(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValueError(f"'{value}' is not a list")
        return [item(v) for v in value] if item else value

    return conv


def dict_or_none(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"'{value}' is not a dictionary")
    return value


def anything(value: Any) -> Any:
    return value


def ip_or_none(value: Any) -> Any:
    # Full validation (version, network/broadcast) happens in IPAM with context.
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{value}' is not a valid IP address")
    return value


def mtu(value: Any) -> int:
    n = to_int(value)
    if n < 68:
        raise ValueError(f"'{n}' is not a valid MTU (minimum 68)")
    return n

