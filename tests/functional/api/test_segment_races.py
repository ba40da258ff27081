"""No duplicate segment ever: several servers, concurrent clients, pools run dry.

Four ``netplex server`` processes share one PostgreSQL database (one server
on SQLite); threads create and delete tenant and provider networks through
all of them. Afterwards every allocation is unique and belongs to exactly
one live segment, and the number of 503s is exactly what the arithmetic says.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from netplex.lab.server_process import ServerProcess

VLANS, VNIS = 20, 30
CONF = f"""
[ml2]
type_drivers = local,vlan,vxlan
project_network_types = vlan,vxlan
[ml2_type_vlan]
network_vlan_ranges = physnet1:1:{VLANS}
[ml2_type_vxlan]
vni_ranges = 1:{VNIS}
[database]
connection = {{url}}
[quotas]
# Load, not limits: Neutron's default quotas (100 networks, 500 ports) would stop the run.
quota_network = -1
quota_subnet = -1
quota_port = -1
"""


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(
        method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"}
    )
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r.status, (json.loads(raw) if raw else None)


@pytest.fixture(params=["postgres", "sqlite"])
def servers(
    request: pytest.FixtureRequest, tmp_path: Path, make_db_url: Callable[[str], str]
) -> Iterator[tuple[str, list[ServerProcess]]]:
    url = make_db_url(request.param)
    count = 4 if request.param == "postgres" else 1
    procs = [ServerProcess(tmp_path / f"s{i}", CONF.format(url=url)) for i in range(count)]
    try:
        for p in procs:
            p.start()
        yield url, procs
    finally:
        for p in procs:
            p.stop()


def check_invariants(url: str) -> dict[str, int]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as c:
        allocs = c.execute(
            text("SELECT network_type, physical_network, segmentation_id, segment_id FROM segment_allocations")
        ).all()
        segs = c.execute(text("SELECT id, network_type, physical_network, segmentation_id FROM network_segments")).all()
        nets = c.execute(text("SELECT count(*) FROM networks")).scalar()
    engine.dispose()
    keys = [(t, p or "", s) for t, p, s, _ in allocs]
    assert len(keys) == len(set(keys)), "duplicate allocation"
    by_seg = {sid: (t, p or "", s) for t, p, s, sid in allocs}
    assert len(by_seg) == len(allocs), "an allocation without exactly one segment"
    for sid, t, p, s in segs:
        if t in ("vlan", "vxlan"):
            assert by_seg.get(sid) == (t, p or "", s), f"segment {sid} not backed by its allocation"
    assert set(by_seg) <= {sid for sid, *_ in segs}, "allocation of a deleted segment leaked"
    counts = {"vlan": 0, "vxlan": 0}
    for t, _, s, _ in allocs:
        if t in counts and (t != "vlan" or s <= VLANS):
            counts[t] += 1
    counts["networks"] = int(nets or 0)
    return counts


def test_pools_exhaust_exactly_and_never_duplicate(servers: tuple[str, list[ServerProcess]]) -> None:
    url, procs = servers
    ports = [p.port for p in procs]
    rr = iter(range(10**9))
    lock = threading.Lock()

    def server() -> int:
        with lock:
            return ports[next(rr) % len(ports)]

    def create(_: int) -> tuple[int, Any]:
        return call(server(), "POST", "/v2.0/networks", {"network": {"name": "t"}})

    # Phase 1: 70 tenant creates race for 50 IDs (20 VLAN + 30 VXLAN).
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(VLANS + VNIS + 20)))
    ok = [b["network"] for s, b in results if s == 201]
    assert len(ok) == VLANS + VNIS
    assert sorted(s for s, _ in results if s != 201) == [503] * 20
    assert all(b["NeutronError"]["type"] == "NoNetworkAvailable" for s, b in results if s == 503)
    assert check_invariants(url) == {"vlan": VLANS, "vxlan": VNIS, "networks": VLANS + VNIS}

    # Phase 2: delete 15 at random concurrently, then 25 creates race for those 15 IDs.
    random.seed(7)
    victims = random.sample(ok, 15)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda n: call(server(), "DELETE", f"/v2.0/networks/{n['id']}")[0], victims))
    assert statuses == [204] * 15
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(25)))
    assert sum(1 for s, _ in results if s == 201) == 15
    assert sum(1 for s, _ in results if s == 503) == 10
    assert check_invariants(url) == {"vlan": VLANS, "vxlan": VNIS, "networks": VLANS + VNIS}

    # Phase 3: 8 clients race for the same provider VLAN outside the tenant range.
    def provider(_: int) -> int:
        body = {
            "network": {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet1",
                "provider:segmentation_id": 300,
            }
        }
        return call(server(), "POST", "/v2.0/networks", body)[0]

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(provider, range(8)))
    assert sorted(statuses) == [201] + [409] * 7
    counts = check_invariants(url)
    assert counts["networks"] == VLANS + VNIS + 1
