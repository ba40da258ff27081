"""Provider attributes of a network create, validated (no database).

``provider:network_type/physical_network/segmentation_id`` or ``segments``,
as Neutron's provider and multi-provider extensions define them. The type
manager hands in its per-segment validation (which asks the type driver).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from netplex.core.segments_model import SegmentRequest
from netplex.errors import InvalidInput

NETWORK_TYPE = "provider:network_type"
PHYSICAL_NETWORK = "provider:physical_network"
SEGMENTATION_ID = "provider:segmentation_id"
PROVIDER_KEYS = (NETWORK_TYPE, PHYSICAL_NETWORK, SEGMENTATION_ID)

#: (network_type, physical_network, segmentation_id) -> the checked request.
SegmentValidator = Callable[[Any, Any, Any], SegmentRequest]
PartialCheck = Callable[[SegmentRequest], bool]


def validate_provider_request(
    attrs: Mapping[str, Any], *, segment: SegmentValidator, is_partial: PartialCheck
) -> list[SegmentRequest] | None:
    """The provider segments a network create asks for, validated; None if none.

    Reads ``provider:network_type/physical_network/segmentation_id`` (None
    = unset) or ``segments`` (a list of dicts with those keys). Raises
    InvalidInput (400) for everything malformed: both forms at once, a
    missing or unknown type, a physnet or id the type does not allow,
    duplicate segments. Who may send them at all is policy
    (``create_network:provider:*``, ``create_network:segments``).
    """
    provider_set = any(attrs.get(k) is not None for k in PROVIDER_KEYS)
    raw_segments = attrs.get("segments")
    if not provider_set and raw_segments is None:
        return None
    if provider_set and raw_segments is not None:
        raise InvalidInput(error_message="Segments and provider values cannot both be set.")
    if provider_set:
        entries: list[Mapping[str, Any]] = [attrs]
    else:
        if not isinstance(raw_segments, list):
            raise InvalidInput(error_message="segments must be a list of provider segments")
        if not raw_segments:
            return None
        entries = []
        for entry in raw_segments:
            if not isinstance(entry, Mapping):
                raise InvalidInput(error_message=f"segment {entry!r} is not an object")
            extra = sorted(set(entry) - set(PROVIDER_KEYS))
            if extra:
                raise InvalidInput(
                    error_message=f"Unrecognized attribute(s) '{', '.join(extra)}'"
                )
            entries.append(entry)
    requests = [
        segment(e.get(NETWORK_TYPE), e.get(PHYSICAL_NETWORK),
                              e.get(SEGMENTATION_ID))
        for e in entries
    ]
    full = [r for r in requests if not is_partial(r)]
    if len(set(full)) != len(full):
        raise InvalidInput(error_message="Duplicate segment entry in request.")
    return requests


def to_int(value: Any) -> int | None:
    """provider:segmentation_id as Neutron converts it: int or integer string."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(
            error_message=f"Invalid input for provider:segmentation_id. Reason: '{value}' is "
            "not an integer."
        )
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidInput(
        error_message=f"Invalid input for provider:segmentation_id. Reason: '{value}' is not "
        "an integer."
    )
