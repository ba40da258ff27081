"""Reading what agents report in ``configurations`` (mappings and lists, in the forms agents send)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def as_mapping(value: Any) -> dict[str, str]:
    """Agents report mappings as a dict; older ones as ``a:b,c:d`` or a list."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    items: Sequence[Any]
    if isinstance(value, str):
        items = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, Sequence):
        items = value
    else:
        return {}
    out: dict[str, str] = {}
    for item in items:
        key, sep, val = str(item).partition(":")
        if sep and key.strip():
            out[key.strip()] = val.strip()
    return out


def as_str_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, Sequence):
        return tuple(str(v) for v in value)
    return ()
