"""Tables of the l3 service (filled in by its issue)."""
