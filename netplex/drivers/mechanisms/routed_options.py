"""The ``[routed]`` section: options of the routed hosts' agents (``netplex.config_options``
entry point ``routed``), read by :class:`netplex.agent.routed.RoutedKind` as
``settings.backend_options``.

It lives beside the routed mechanism driver because the agent may not import
:mod:`netplex.config`; its own module, importing nothing but that, because
every process that reads a configuration file loads the declared options.

=========================  ==========================================================
``route_distribution``     ``feed`` (default): every routed agent installs the other
                           hosts' endpoint routes it learns from the change feed, with
                           the owning host's underlay address as next hop (hosts on
                           one underlay subnet, no extra daemon). ``bgp``: the agent
                           exports its endpoints through BIRD 2 to ``bgp_peers``.
``local_ip``               this host's underlay IPv4 address (default ``[vxlan]
                           local_ip``), reported as ``tunneling_ip``: the next hop
                           other routed hosts use for its endpoints
``local_ip6``              its underlay IPv6 address, reported as ``tunneling_ip6``:
                           the next hop of its IPv6 endpoints (an IPv6 route cannot
                           have an IPv4 gateway); without one, other hosts do not
                           route to its IPv6 endpoints in feed mode
``create_taps``            create a persistent tap for a bound port whose compute
                           side made none (default false: the compute side plugs, as
                           with every other mechanism; never with namespace VMs,
                           whose tap is the host end of a veth the VIF library makes)
``bgp_as``                 the AS number of every routed host (iBGP), default 64512
``bgp_peers``              BGP neighbours (``ip`` list): the other hosts (full
                           mesh) or a route reflector / top-of-rack router
``birdc``, ``bird``        the BIRD 2 programs (default ``birdc``, ``bird``)
``bird_dir``               BIRD's work directory (config, control socket, pidfile,
                           log), default ``/run/netplex/routed-bird-<host>``
=========================  ==========================================================
"""

from __future__ import annotations

from netplex.config import Opt, parse_bool, parse_list

__all__ = ["CONFIG_OPTIONS", "ROUTE_DISTRIBUTIONS", "SECTION"]

SECTION = "routed"
ROUTE_DISTRIBUTIONS = ("feed", "bgp")


def _distribution(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ROUTE_DISTRIBUTIONS:
        raise ValueError(f"expected one of {', '.join(ROUTE_DISTRIBUTIONS)}, got {value!r}")
    return mode


def _list(value: str) -> tuple[str, ...]:
    return tuple(parse_list(value))


#: ``netplex.config_options`` entry point ``routed``.
CONFIG_OPTIONS = {
    SECTION: [
        Opt("route_distribution", _distribution, "feed",
            "How other hosts learn this host's endpoints: feed (agents install each other's "
            "routes from the change feed) or bgp (BIRD 2 exports them to bgp_peers)."),
        Opt("local_ip", str, "", "Underlay IPv4 address (default [vxlan] local_ip): next hop of "
            "this host's endpoints."),
        Opt("local_ip6", str, "", "Underlay IPv6 address: next hop of this host's IPv6 endpoints."),
        Opt("create_taps", parse_bool, False,
            "Create a tap for a bound port whose compute side made none."),
        Opt("bgp_as", int, 64512, "AS number of the routed hosts (iBGP)."),
        Opt("bgp_peers", _list, (), "BGP neighbours: other hosts or a route reflector."),
        Opt("bird", str, "bird", "The BIRD 2 daemon."),
        Opt("bird_dir", str, "", "BGP mode: the agent's BIRD work directory (config, socket, "
            "pidfile); default /run/netplex/routed-bird-<host>."),
        Opt("birdc", str, "birdc", "BIRD 2's control program."),
    ],
}
