"""Port binding: deciding, storing and explaining which mechanism wires a port.

One module per job:

- :mod:`.views` -- binding values: validation of requests, the ``binding:*`` views.
- :mod:`.contexts` -- driver contexts (network, subnet, port) and what they read.
- :mod:`.staging` -- binding requests in the port's own transaction (create, update, delete).
- :mod:`.attempt` -- one binding attempt: snapshot, decide (no transaction), compare-and-swap.
- :mod:`.multiple` -- multiple bindings per port (create, activate, delete; live migration).
- :mod:`.segments` -- dynamic segments, reference-counted by binding levels.
- :mod:`.liveness` -- agents come and go: rebinding failed ports, ports DOWN for dead agents.
- :mod:`.queries` -- reading bindings (``/ports/{id}/bindings``, ``explain``).
- :mod:`.collaborators` -- what binding needs from outside (type manager, the ports table).
- :mod:`.service` -- :class:`PortBindingService`, the one entry point the rest of core uses.

Who binds when: whoever changes a binding's inputs bumps ``attempt`` (see
:meth:`PortBindingService.stage_binding`) and, after commit, calls
:meth:`PortBindingService.bind_port`. A binding that is already bound is
left alone (unless ``force``), so of several racing binders the first commit
wins and the others return its result.

Port status: a change of the active binding's host, and an activation, set
the port ``DOWN`` (the new host's agent reports it ``ACTIVE`` when wired).
"""

from netplex.core.binding.collaborators import PortRecords, SegmentTypeManager
from netplex.core.binding.contexts import (
    binding_levels,
    network_context,
    network_segments,
    port_context,
    subnet_context,
)
from netplex.core.binding.service import PortBindingService
from netplex.core.binding.views import (
    UNSET,
    BindingView,
    binding_dict,
    binding_dicts,
    binding_entry_dict,
    validate_host,
    validate_profile,
    validate_vnic_type,
)

__all__ = [
    "UNSET",
    "BindingView",
    "PortBindingService",
    "PortRecords",
    "SegmentTypeManager",
    "binding_dict",
    "binding_dicts",
    "binding_entry_dict",
    "binding_levels",
    "network_context",
    "network_segments",
    "port_context",
    "subnet_context",
    "validate_host",
    "validate_profile",
    "validate_vnic_type",
]
