"""The segment value type shared by the core, type drivers and mechanism drivers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Segment", "SegmentRequest"]


@dataclass(frozen=True, slots=True)
class SegmentRequest:
    """What a caller asked for: any field may be None (= "pick one for me")."""

    network_type: str | None = None
    physical_network: str | None = None
    segmentation_id: int | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """One allocated L2 segment of a network. Immutable: drivers get copies of facts."""

    id: str
    network_id: str
    network_type: str
    physical_network: str | None
    segmentation_id: int | None
    is_dynamic: bool = False
    segment_index: int = 0
    name: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Segment:
        """From a ``network_segments`` row (ORM object or Core row)."""
        return cls(
            id=row.id,
            network_id=row.network_id,
            network_type=row.network_type,
            physical_network=row.physical_network,
            segmentation_id=row.segmentation_id,
            is_dynamic=bool(row.is_dynamic),
            segment_index=row.segment_index,
            name=row.name,
        )

    def as_provider_dict(self) -> dict[str, Any]:
        return {
            "provider:network_type": self.network_type,
            "provider:physical_network": self.physical_network,
            "provider:segmentation_id": self.segmentation_id,
        }
