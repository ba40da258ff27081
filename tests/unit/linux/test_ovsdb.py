"""OvsdbClient against a scripted JSON-RPC server on a Unix socket (no Open vSwitch needed)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netplex.linux.ovsdb import OvsdbClient, OvsdbError, OvsdbUnavailable, TransactionError

COLUMNS = {"Port": ["name", "tag"]}
U1, U2 = "11111111-0000-0000-0000-000000000000", "22222222-0000-0000-0000-000000000000"


class FakeServer:
    """Accepts connections one at a time; answers monitor/echo/transact like ovsdb-server.

    ``initial`` is the monitor's initial contents for the next connection;
    the monitor reply is written in small pieces (split inside a multi-byte
    character too), as a busy server's large reply arrives.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.initial: dict[str, Any] = {}
        self.transact: Callable[[list[Any]], list[Any]] = lambda ops: [{} for _ in ops]
        self.conn: socket.socket | None = None
        self.connections = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(4)
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _send(self, msg: Any, pieces: int = 1) -> None:
        assert self.conn is not None
        data = json.dumps(msg, ensure_ascii=False).encode()
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            self.conn.sendall(data[i:i + step])
            if pieces > 1:
                time.sleep(0.002)

    def notify(self, updates: dict[str, Any]) -> None:
        self._send({"method": "update", "params": [None, updates], "id": None})

    def drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conn = conn
            self.connections += 1
            decoder, buf = json.JSONDecoder(), ""
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data.decode()
                    while buf:
                        try:
                            msg, end = decoder.raw_decode(buf)
                        except json.JSONDecodeError:
                            break
                        buf = buf[end:]
                        self._answer(msg)
            except OSError:
                pass

    def _answer(self, msg: dict[str, Any]) -> None:
        if msg["method"] == "monitor":
            self._send({"id": msg["id"], "result": self.initial, "error": None}, pieces=7)
        elif msg["method"] == "echo":
            self._send({"id": msg["id"], "result": msg["params"], "error": None})
        elif msg["method"] == "transact":
            self._send({"id": msg["id"], "result": self.transact(msg["params"][1:]), "error": None})

    def close(self) -> None:
        self._stop = True
        self.drop()
        self.listener.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FakeServer]:
    srv = FakeServer(tmp_path / "db.sock")
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def client(server: FakeServer) -> Iterator[OvsdbClient]:
    c = OvsdbClient(f"unix:{server.path}", COLUMNS, timeout=2.0)
    try:
        yield c
    finally:
        c.close()


def _wait(cond: Callable[[], bool]) -> None:
    end = time.monotonic() + 5
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_replica_from_initial_contents_then_updates(server: FakeServer, client: OvsdbClient) -> None:
    server.initial = {"Port": {U1: {"new": {"name": "tapé1", "tag": ["set", []]}}}}
    client.start()
    rep = client.snapshot()
    assert rep.rows("Port") == {U1: {"name": "tapé1", "tag": []}}
    server.notify({"Port": {U2: {"new": {"name": "tap2", "tag": 5}},
                            U1: {"old": {"tag": ["set", []]}, "new": {"name": "tapé1", "tag": 3}}}})
    rep = client.snapshot()  # the echo comes back after the update
    assert rep.rows("Port") == {U1: {"name": "tapé1", "tag": 3}, U2: {"name": "tap2", "tag": 5}}
    server.notify({"Port": {U1: {"old": {"name": "tapé1", "tag": 3}}}})
    assert set(client.snapshot().rows("Port")) == {U2}
    assert client.snapshot().version > rep.version


def test_transact_results_and_errors(server: FakeServer, client: OvsdbClient) -> None:
    client.start()
    server.transact = lambda ops: [{"count": 1}, {"error": "constraint violation", "details": "dup"}]
    with pytest.raises(TransactionError) as err:
        client.transact([{"op": "update"}, {"op": "insert"}])
    assert err.value.index == 1 and "dup" in str(err.value)
    server.transact = lambda ops: [{}, {"error": "referential integrity violation"}]
    with pytest.raises(TransactionError) as err:
        client.transact([{"op": "insert"}])
    assert err.value.index is None  # an error past the operations: the commit failed
    server.transact = lambda ops: [{"count": 2}]
    assert client.transact([{"op": "update"}]) == [{"count": 2}]


def test_reconnects_and_replaces_the_replica(server: FakeServer, client: OvsdbClient) -> None:
    server.initial = {"Port": {U1: {"new": {"name": "old", "tag": 1}}}}
    client.start()
    assert set(client.snapshot().rows("Port")) == {U1}
    server.initial = {"Port": {U2: {"new": {"name": "new", "tag": 2}}}}
    server.drop()  # "ovsdb-server restarted"
    _wait(lambda: client.connections == 2)
    assert client.snapshot().rows("Port") == {U2: {"name": "new", "tag": 2}}


def test_no_server_means_unavailable_not_empty(tmp_path: Path) -> None:
    c = OvsdbClient(f"unix:{tmp_path / 'none.sock'}", COLUMNS, timeout=0.3).start()
    try:
        with pytest.raises(OvsdbUnavailable, match="no OVSDB connection"):
            c.snapshot()
        with pytest.raises(OvsdbUnavailable):
            c.transact([{"op": "select"}])
    finally:
        c.close()


def test_wait_for_sees_later_updates_and_times_out(server: FakeServer, client: OvsdbClient) -> None:
    server.initial = {"Port": {U1: {"new": {"name": "p", "tag": 1}}}}
    client.start()
    client.snapshot()
    threading.Timer(0.05, server.notify, [{"Port": {U1: {"new": {"name": "p", "tag": 2}}}}]).start()
    rep = client.wait_for(lambda r: r.rows("Port")[U1]["tag"] == 2, timeout=2)
    assert rep.rows("Port")[U1]["tag"] == 2
    with pytest.raises(OvsdbError, match="timed out"):
        client.wait_for(lambda r: False, timeout=0.1)


def test_unsupported_remote_is_reported() -> None:
    c = OvsdbClient("ssl:127.0.0.1:6640", COLUMNS, timeout=0.5).start()
    try:
        with pytest.raises(OvsdbUnavailable, match="unsupported OVSDB remote"):
            c.replica()
    finally:
        c.close()


def test_listeners_hear_each_change_after_the_replica_has_it(server: FakeServer,
                                                             client: OvsdbClient) -> None:
    heard: list[tuple[bool, int, set[str], set[str]]] = []

    def listener(updates: Any, initial: bool, connection: int) -> None:
        # Called on the connection thread, after the replica took the change.
        heard.append((initial, connection, set(updates.get("Port", {})),
                      set(client.replica(0).rows("Port"))))
        if len(heard) == 2:
            raise RuntimeError("a listener's bug")  # must not cut the connection

    server.initial = {"Port": {U1: {"new": {"name": "p", "tag": 1}}}}
    assert client.add_listener(listener) == 0
    client.start()
    _wait(lambda: len(heard) == 1)
    server.notify({"Port": {U2: {"new": {"name": "q", "tag": 2}}}})
    _wait(lambda: len(heard) == 2)
    server.drop()
    _wait(lambda: len(heard) == 3)
    assert heard == [(True, 1, {U1}, {U1}), (False, 1, {U2}, {U1, U2}), (True, 2, {U1}, {U1})]
    assert client.connections == 2
    client.remove_listener(listener)
    server.notify({"Port": {U2: {"old": {"name": "q", "tag": 2}}}})
    client.snapshot()
    assert len(heard) == 3
