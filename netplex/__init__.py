"""Netplex: a modular network control plane speaking the Neutron v2.0 API."""

__version__ = "0.1.0"
