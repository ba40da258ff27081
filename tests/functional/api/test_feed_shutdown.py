"""Stopping a server with parked long-polls: every poll answered, no traceback.

A real ``netplex server`` (one worker, and two: uvicorn's parent then stops
its worker processes) gets SIGTERM while followers wait on
``GET /v2.0/changes``. Each must get its (empty) answer, not a reset
connection, and the log must hold no traceback (before: one
``RuntimeError: Lock is not acquired.`` per cancelled poll, and uvicorn's
"Cancel N running task(s)" at the shutdown deadline).
"""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from netplex.lab.server_process import ServerProcess


def get(port: int, path: str, timeout: float = 60) -> tuple[int, Any]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_parked_polls_without_traceback(tmp_path: Path, workers: int) -> None:
    srv = ServerProcess(tmp_path / "srv", f"api_workers = {workers}\n").start()
    try:
        status, body = get(srv.port, "/v2.0/changes?timeout=0")
        assert status == 200
        head = body["revision"]
        answers: list[Any] = []
        lock = threading.Lock()

        def follow() -> None:
            try:
                got: Any = get(srv.port, f"/v2.0/changes?after={head}&timeout=50")
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                got = exc
            with lock:
                answers.append(got)

        threads = [threading.Thread(target=follow) for _ in range(8)]
        for t in threads:
            t.start()
        # The polls park at once (nothing to answer); a poll arriving after
        # the signal is answered just as well, so this is not a timing condition.
        threading.Event().wait(1.0)
        assert srv.proc is not None
        srv.proc.terminate()
        for t in threads:
            t.join(40)  # far below the 50 s poll timeout: answered by the shutdown
        # uvicorn re-raises the SIGTERM it handled once it has shut down (one worker): -15.
        assert srv.proc.wait(30) in (0, -15)
        assert len(answers) == 8, answers
        for a in answers:
            assert isinstance(a, tuple) and a[0] == 200, a
            assert a[1]["changes"] == []
        log = srv.log.read_text()
        assert "Traceback" not in log, log[-3000:]
        assert "Lock is not acquired" not in log
        assert "Cancel" not in log, log[-3000:]
    finally:
        srv.stop()
