"""The installed backend kinds, and what the agent derives from its settings through one.

Kinds are found by name in the ``netplex.agent_backends`` entry-point group
(:mod:`netplex.agent.backend_api` is the contract they implement). This
module is the only place that turns an :class:`AgentSettings` into a kind's
answers: the settings, the registration body the server sees, the backend.
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

from netplex.agent.backend_api import ENTRY_POINT_GROUP, Backend, BackendKind
from netplex.agent.settings import AgentSettings, SettingsError

__all__ = ["backend_kind", "backend_names", "backend_options", "build_backend", "configurations", "report_body",
           "settings_from_config", "validate"]


def backend_names() -> list[str]:
    """Names of the installed backend kinds."""
    return sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})


@functools.cache
def backend_kind(name: str) -> BackendKind:
    """The installed backend kind called ``name``; :class:`SettingsError` if there is none."""
    eps = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not eps:
        names = ", ".join(backend_names()) or "none"
        raise SettingsError(f"unknown mechanism {name!r} (installed backends: {names})",
                            "pass --mechanism with one of the installed names, or install the package "
                            f"that provides {name!r} (entry point group {ENTRY_POINT_GROUP})")
    kind = eps[0].load()
    if not (isinstance(kind, type) and issubclass(kind, BackendKind)):
        raise SettingsError(f"backend {name!r} ({eps[0].value}) is not a BackendKind",
                            "fix or uninstall the package that provides it")
    return kind()


def settings_from_config(cfg: Any, mechanism: str, **overrides: Any) -> AgentSettings:
    """:meth:`AgentSettings.from_config` for the kind ``mechanism`` (unknown: :class:`SettingsError`).

    The kind's own section (:attr:`BackendKind.options_section`) becomes
    ``settings.backend_options``; its values were parsed, and bad ones refused with
    a :class:`netplex.config.ConfigError`, when ``cfg`` was loaded.
    """
    kind = backend_kind(mechanism)
    return AgentSettings.from_config(cfg, mechanism, config_local_ip=kind.local_ip(cfg),
                                     backend_options=backend_options(cfg, kind), **overrides)


def backend_options(cfg: Any, kind: BackendKind) -> dict[str, Any]:
    """The parsed values of ``kind``'s own configuration section ({} if it names none)."""
    section = kind.options_section
    if section is None:
        return {}
    try:
        return dict(cfg.section(section))
    except KeyError:
        # Nobody declared the section: its options were never checked or defaulted.
        raise SettingsError(
            f"backend {kind.name!r} reads [{section}] but no options are declared for that section",
            f"declare them through the netplex.config_options entry point group (section {section!r}) "
            "in the package that provides the backend, and reinstall it") from None


def validate(settings: AgentSettings) -> None:
    """Everything that can be checked before contacting anything; raises :class:`SettingsError`."""
    kind = backend_kind(settings.mechanism)
    settings.validate()
    kind.validate(settings)


def configurations(settings: AgentSettings) -> dict[str, Any]:
    """The agent's ``configurations``, as the mechanism drivers read them."""
    common: dict[str, Any] = {
        "tunneling_ip": settings.local_ip or None,
        "tunnel_types": list(settings.tunnel_types),
        "l2_population": True,
    }
    return {**common, **backend_kind(settings.mechanism).configurations(settings)}


def report_body(settings: AgentSettings, start_flag: bool) -> dict[str, Any]:
    """The body of ``POST /v2.0/netplex/agent-report`` (register + heartbeat)."""
    kind = backend_kind(settings.mechanism)
    return {
        "agent_type": kind.agent_type,
        "binary": kind.binary,
        "host": settings.host,
        "topic": "N/A",
        "configurations": configurations(settings),
        "availability_zone": settings.availability_zone,
        "start_flag": start_flag,
    }


def build_backend(settings: AgentSettings) -> Backend[Any]:
    """A fresh backend for this host; the agent closes it when it stops (:meth:`Backend.close`)."""
    return backend_kind(settings.mechanism).build(settings)
