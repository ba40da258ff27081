"""Every privileged operation: namespaces, netlink/iproute2, routes, neighbours, sysctls, nftables, BIRD, Open vSwitch.

This package is the one place that needs ``CAP_NET_ADMIN`` (STYLE: keep privilege
in one module). Everything above it (agent planning, models) is pure and runs
unprivileged in unit tests.
"""
