"""The real 2008 Internet table (RouteViews, 270,849 prefixes) mapped onto RB4's four
ports: the cluster's route file sends each prefix to port origin-AS mod 4 via that port's
host, every server holds it, and a packet to an address of that table crosses the cluster
to the host its AS names (which answers a ping for it)."""

from __future__ import annotations

import gzip
import ipaddress
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clustertest import host_run, logs, ping, rb4_text, read, running, spec_from
from conftest import shared_data_dir
from nstest import can_make_namespaces

TABLE = shared_data_dir() / "ipasn_20080501_v12.dat.gz"
HOST_OF_PORT = {0: "h1", 1: "h2", 2: "h3", 3: "h4"}


def _spec(tmp_path: Path):
    if not TABLE.is_file():
        pytest.skip(f"needs the shared 2008 table at {TABLE}")
    return spec_from(rb4_text(routes=f'"{TABLE}"'), tmp_path)


def _table_line(n: int) -> tuple[str, int]:
    """The n-th route of the 2008 file (prefix, origin AS)."""
    with gzip.open(TABLE, "rt") as f:
        body = [ln for ln in f if ln.strip() and not ln.startswith(";")]
    prefix, asn = body[n].split()
    return prefix, int(asn)


def test_the_route_file_maps_every_prefix_to_its_port_and_gateway(tmp_path: Path) -> None:
    from routebricks.cluster.config import routes_file
    from routebricks.elements.ip.iproutetable import read_route_file
    from routebricks.lookup import load_ipasn

    spec = _spec(tmp_path)
    out = routes_file(spec)
    assert out is not None and out.is_file()
    arrays = read_route_file(out)
    ref = load_ipasn(TABLE, nports=4)  # our reader of the .dat, checked below by hand
    assert len(arrays.net) == len(ref.net) > 270_000
    # Every route goes to its port's host (the port's gateway): 10.P+1.0.2.
    hosts = np.array([int(ipaddress.IPv4Address(f"10.{p + 1}.0.2")) for p in range(4)],
                     np.uint32)
    assert (arrays.gateway == hosts[arrays.port]).all()
    # A few lines of the file read with nothing of ours.
    for n in (0, 1000, 123_456, 270_000):
        prefix, asn = _table_line(n)
        net = ipaddress.IPv4Network(prefix, strict=False)
        if net.subnet_of(ipaddress.IPv4Network("10.0.0.0/8")):
            continue  # a bogon: dropped (documented in load_ipasn)
        k = np.flatnonzero((arrays.net == int(net.network_address))
                           & (arrays.length == net.prefixlen))
        assert k.size == 1, prefix
        assert int(arrays.port[k[0]]) == asn % 4


def test_cluster_config_with_the_table_checks(tmp_path: Path) -> None:
    spec_file = tmp_path / "cluster.toml"
    spec_file.write_text(rb4_text(routes=f'"{TABLE}"'))
    if not TABLE.is_file():
        pytest.skip(f"needs the shared 2008 table at {TABLE}")
    cfg = subprocess.run([sys.executable, "-m", "routebricks.cli", "cluster", "config",
                          str(spec_file), "--server", "s2"], capture_output=True, text=True,
                         timeout=300)
    assert cfg.returncode == 0, cfg.stderr
    (tmp_path / "s2.click").write_text(cfg.stdout)
    check = subprocess.run([sys.executable, "-m", "routebricks.cli", "check",
                            str(tmp_path / "s2.click")], capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0, check.stderr


SKIP = can_make_namespaces()


@pytest.mark.netns
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_a_packet_to_a_table_address_reaches_the_host_of_its_as(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    # A /24 of the table whose origin AS maps to port 2 (h3), and one to port 3 (h4).
    from routebricks.cluster.config import routes_file
    from routebricks.elements.ip.iproutetable import read_route_file

    arrays = read_route_file(routes_file(spec))
    targets = {}
    for port in (2, 3):
        k = int(np.flatnonzero((arrays.port == port) & (arrays.length == 24))[0])
        net = ipaddress.IPv4Address(int(arrays.net[k]))
        targets[port] = str(net + 1)
    with running(spec) as st:
        for port, addr in targets.items():
            host = HOST_OF_PORT[port]
            # The host owns the address: it answers, so the ping proves the path there.
            res = host_run(st, host, ["ip", "addr", "add", f"{addr}/32", "dev", "lo"])
            assert res.returncode == 0, res.stderr
            res = ping(st, "h1", addr, count=3)
            assert res.returncode == 0, f"{addr} via {host}: {res.stdout}\n{logs(st)}"
            # ... by the table's route, on every server alike.
            for server in st.servers:
                assert read(st, server, f"rt.lookup {addr}") == f"{port} 10.{port + 1}.0.2"
