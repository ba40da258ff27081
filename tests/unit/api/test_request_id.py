"""Every response carries ``X-OpenStack-Request-Id: req-<uuid>``, echoed in the request's log line."""

from __future__ import annotations

import logging
import re
import uuid

import pytest

from tests.unit.api.conftest import Api

RID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/", 200),
    ("GET", "/v2.0/networks", 200),
    ("GET", f"/v2.0/networks/{uuid.uuid4()}", 404),
    ("GET", "/v2.0/no-such-thing", 404),
    ("POST", "/v2.0/networks", 400),
])
def test_every_answer_has_a_fresh_request_id(api: Api, method: str, path: str, status: int) -> None:
    ids = set()
    for _ in range(2):
        r = api.req(method, path, {} if method == "POST" else None)
        assert r.status_code == status
        rid = r.headers["X-OpenStack-Request-Id"]
        assert RID.match(rid), rid
        ids.add(rid)
    assert len(ids) == 2


def test_request_log_line_carries_the_id(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="netplex.api.requests"):
        ok = api.req("GET", "/v2.0/networks")
        bad = api.req("GET", f"/v2.0/networks/{uuid.uuid4()}")
    text = caplog.text
    for r in (ok, bad):
        assert f"[{r.headers['X-OpenStack-Request-Id']}]" in text
    assert '"GET /v2.0/networks" status: 200' in text
    # errors are logged at INFO, so a server at its default level shows them
    assert any(rec.levelno == logging.INFO and "status: 404" in rec.getMessage() for rec in caplog.records)
