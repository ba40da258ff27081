"""Service plugins (L3, security groups, DHCP scheduling, quotas), chosen by ``[DEFAULT] service_plugins``.

Nothing is built here yet: the contract module (``netplex.core.service_api``) and the loader of the
``netplex.service_plugins`` entry-point group are still to come (issue 11, not finished).
"""
