"""Tables of the quota service (filled in by its issue)."""
