"""Neutron's quota errors (the class name is the ``type`` clients match on)."""

from __future__ import annotations

from netplex.errors import BadRequest, Conflict, NotFound

__all__ = ["InvalidQuotaValue", "OverQuota", "QuotaResourceUnknown"]


class OverQuota(Conflict):
    message = "Quota exceeded for resources: {overs}."


class QuotaResourceUnknown(NotFound):
    message = "Unknown quota resources {unknown}."


class InvalidQuotaValue(BadRequest):
    message = "Invalid input for {resource}. Reason: '{value}' is not an integer >= -1."
