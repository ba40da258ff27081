"""Tables of the dhcp service (filled in by its issue)."""
