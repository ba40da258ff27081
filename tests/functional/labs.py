"""A running lab for functional tests (server, underlay, hosts with their agents), and waiting.

Every name starts with ``<tag>-<6 hex>``; the lab is taken down (agents, server, BIRD,
namespaces) whatever happens, and ``NETPLEX_TEST_SHOW_LOGS=1`` prints its logs first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from netplex.lab.lab import Lab


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "", interval: float = 0.05) -> None:
    """Until ``cond()``; an AssertionError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"not converged after {timeout:g}s: {what}")
        time.sleep(interval)


@contextlib.contextmanager
def running_lab(tag: str, hosts: Sequence[tuple[str, str]], *, router: bool = False,
                **options: Any) -> Iterator[Lab]:
    """A lab with ``hosts`` ((name, kind) pairs) whose agents are registered and alive.

    Agents start once every host exists (BGP peers are known then); ``router`` adds the
    BGP fabric's router first. ``options`` go to :class:`Lab`.
    """
    root = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    options.setdefault("report_interval", 2)
    lab = Lab(root / "lab", prefix=f"{tag}-{uuid.uuid4().hex[:6]}", **options)
    try:
        lab.init()
        lab.start_server()
        lab.add_underlay()
        for name, kind in hosts:
            lab.add_host(name, kind)
        if router:
            lab.add_router()
        for name, _ in hosts:
            lab.start_agent(name)
        lab.wait_agents()
        yield lab
    finally:
        if os.environ.get("NETPLEX_TEST_SHOW_LOGS"):
            for log in sorted((lab.dir / "logs").glob("*.log")):
                print(f"==== {log.name}\n{log.read_text()[-3000:]}")
        lab.down()
        shutil.rmtree(root, ignore_errors=True)
