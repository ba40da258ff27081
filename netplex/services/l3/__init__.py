"""Routers, external networks and floating IPs (Neutron's ``router`` service plugin)."""
