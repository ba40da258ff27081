"""DHCP for VMs: agent scheduling and the state DHCP servers need (Neutron's DHCP agent scheduler)."""
