"""Security groups and port security: the API (a service plugin) and the rules Neutron applies to them."""
