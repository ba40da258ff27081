"""8 threads, 2,000 ports, one /21: every IP and MAC distinct, on both backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from netplex import config as config_mod
from netplex.core.context import Context
from netplex.core.plugin import Core
from netplex.db.engine import Database
from netplex.db.models import IPAllocation, Port
from netplex.errors import IpAddressGenerationFailure
from netplex.server import build_core

CONF = "[ml2]\ntype_drivers = local\nproject_network_types = local\n[quotas]\nquota_port = -1\n"


def _core(url: str) -> Core:
    return build_core(config_mod.load(text=CONF), Database(url, max_retries=50))


@pytest.mark.slow
def test_concurrent_port_creation_distinct_ips_and_macs(db_url: str) -> None:
    core = _core(db_url)
    admin = Context.admin()
    net = core.networks.create(admin, {"name": "big"})
    core.subnets.create(admin, {"network_id": net["id"], "ip_version": 4, "cidr": "10.8.0.0/21"})

    def make(i: int) -> tuple[str, str]:
        p = core.ports.create(admin, {"network_id": net["id"], "name": f"p{i}"})
        return p["mac_address"], p["fixed_ips"][0]["ip_address"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(make, range(2000)))
    macs = {m for m, _ in results}
    ips = {ip for _, ip in results}
    assert len(macs) == 2000 and len(ips) == 2000
    with core.db.read() as s:
        assert s.execute(select(func.count()).select_from(Port)).scalar() == 2000
        assert s.execute(select(func.count()).select_from(IPAllocation)).scalar() == 2000
    core.db.dispose()


def test_exhaustion_under_concurrency(db_url: str) -> None:
    core = _core(db_url)
    admin = Context.admin()
    net = core.networks.create(admin, {"name": "small"})
    core.subnets.create(admin, {"network_id": net["id"], "ip_version": 4, "cidr": "10.9.0.0/27"})

    # .2 .. .30 usable: 29 addresses; 40 attempts -> 29 ports and 11 clean failures.
    def make(i: int) -> str:
        try:
            return core.ports.create(admin, {"network_id": net["id"]})["fixed_ips"][0]["ip_address"]
        except IpAddressGenerationFailure:
            return "exhausted"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(make, range(40)))
    got = [r for r in results if r != "exhausted"]
    assert len(got) == 29 and len(set(got)) == 29
    assert results.count("exhausted") == 11
    core.db.dispose()
