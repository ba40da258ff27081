"""Kernel parameters (``/proc/sys``) of a network namespace: read and write many at once.

``net.*`` parameters are per namespace, so they are read and written by a
``sysctl`` process started inside it (``ip netns exec``): one process for
any number of keys, whichever the direction. Keys use sysctl's dotted form
(``net.ipv4.conf.tap0.proxy_arp``). Nothing here imports the rest of Netplex.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping

__all__ = ["read_sysctls", "write_sysctls"]

_TIMEOUT = 60
_KEY = re.compile(r"[A-Za-z0-9_.-]+")
_MISSING = re.compile(r"cannot stat /proc/sys/(\S+?):")


def _argv(netns: str | None, args: list[str]) -> list[str]:
    return (["ip", "netns", "exec", netns] if netns else []) + ["sysctl", *args]


def _key(key: str) -> str:
    if _KEY.fullmatch(key) is None:
        raise ValueError(f"not a sysctl key: {key!r}")
    return key


def read_sysctls(netns: str | None, keys: Iterable[str]) -> dict[str, str]:
    """Current values of ``keys``; keys that do not exist (a device gone) are left out."""
    wanted = sorted({_key(k) for k in keys})
    if not wanted:
        return {}
    proc = subprocess.run(_argv(netns, ["-e", *wanted]), capture_output=True, text=True,
                          timeout=_TIMEOUT, check=False)
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def write_sysctls(netns: str | None, values: Mapping[str, str]) -> dict[str, str]:
    """Set every key; returns key -> error for those that could not be set (others are set)."""
    if not values:
        return {}
    args = [f"{_key(k)}={v}" for k, v in values.items()]
    try:
        proc = subprocess.run(_argv(netns, ["-q", "-w", *args]), capture_output=True, text=True,
                              timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return {k: f"sysctl: {exc}" for k in values}
    if proc.returncode == 0:
        return {}
    errors: dict[str, str] = {}
    for line in proc.stderr.splitlines():
        m = _MISSING.search(line)
        if m is not None:
            key = m[1].replace("/", ".")
            if key in values:
                errors[key] = line.strip()
    if not errors:
        # Unattributable failure (sysctl itself missing, permission): every key failed.
        text = proc.stderr.strip() or f"sysctl exited with {proc.returncode}"
        return {k: text for k in values}
    return errors
