"""Service plugins (L3, security groups, DHCP scheduling, quotas), chosen by ``[DEFAULT] service_plugins``.

The contract a plugin implements is :mod:`netplex.core.service_api`; :mod:`.registry`
resolves the configured names through the ``netplex.service_plugins`` entry-point
group. Plugins shipped with Netplex live in this package, one subpackage each.
"""
