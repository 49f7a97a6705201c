"""The cluster file: every mistake is named with the file, the key and a hint."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.cluster.spec import ClusterFileError, load_cluster, parse_rate, parse_time

REPO = Path(__file__).resolve().parents[2]
RB4 = REPO / "examples" / "rb4.toml"

GOOD = """
[cluster]
rate = "20Mbit"
[[servers]]
name = "s1"
ports = [{ interface = "ext0", address = "10.1.0.1/24", host = "h1" }]
[[servers]]
name = "s2"
ports = [{ interface = "ext0", address = "10.2.0.1/24", host = "h2" }]
"""


def load_text(tmp_path: Path, text: str) -> object:
    f = tmp_path / "c.toml"
    f.write_text(text)
    return load_cluster(f)


def test_rb4_example() -> None:
    spec = load_cluster(RB4)
    assert [s.name for s in spec.servers] == ["s1", "s2", "s3", "s4"]
    assert spec.rate == 20_000_000 and spec.internal_rate == 10_000_000  # 2R/N
    assert len(spec.links) == 6  # a full mesh of 4
    assert [p.index for p in spec.ports] == [0, 1, 2, 3]
    assert spec.ports[0].gateway == ipaddress.IPv4Address("10.1.0.2")  # the host
    assert spec.vlb == "direct" and spec.flowlets and spec.delta == 0.1


@pytest.mark.parametrize("change, key, words", [
    (("20Mbit", "fast"), "cluster.rate", "bad rate"),
    (('rate = "20Mbit"', 'rate = "20Mbit"\nvlb = "random"'), "cluster.vlb", "direct or classic"),
    (('rate = "20Mbit"', 'rate = "20Mbit"\ntopology = "torus"'), "cluster.topology",
     "not supported"),
    (('rate = "20Mbit"', 'rate = "20Mbit"\ndelta = "soon"'), "cluster.delta", "not a time"),
    (('rate = "20Mbit"', 'rate = "20Mbit"\nworkers = 0'), "cluster.workers", "1 to 64"),
    (('rate = "20Mbit"', 'rate = "20Mbit"\nworkers = 2'), "cluster.workers",
     "BFD sessions run in one process"),
    (('rate = "20Mbit"', 'rate = "20Mbit"\nrouting = 1'), "cluster.routing", "unknown key"),
    (('rate = "20Mbit"', 'rate = "20Mbit"\ndirect_rate = "21Mbit"'), "cluster.direct_rate",
     "more than the internal rate"),
    (("10.2.0.1/24", "10.1.0.9/24"), "servers[1].ports[0].address", "overlaps"),
    (("10.2.0.1/24", "10.2.0.1"), "servers[1].ports[0].address", "ADDR/LEN"),
    (('name = "s2"', 'name = "s1"'), "servers[1].name", "two servers"),
    (('name = "s2"', 'name = "2bad"'), "servers[1].name", "not a usable server name"),
    (('interface = "ext0", address = "10.2',
      'interface = "a/b", address = "10.2'), "servers[1].ports[0].interface",
     "not an interface name"),
    (('host = "h2"', 'host = "h2", gateway = "10.9.9.9"'), "servers[1].ports[0].gateway",
     "not a neighbour"),
    (('host = "h2"', 'prefixes = ["10.102.0.0/16"]'), "servers[1].ports[0].prefixes",
     "need a gateway"),
    (('host = "h2"', 'host = "h2", mtu = 100000'), "servers[1].ports[0].mtu", "576 to 9000"),
])
def test_mistakes_name_the_key(tmp_path: Path, change: tuple[str, str], key: str,
                               words: str) -> None:
    text = GOOD.replace(change[0], change[1], 1)
    assert text != GOOD
    with pytest.raises(ClusterFileError) as e:
        load_text(tmp_path, text)
    assert e.value.key == key, str(e.value)
    assert words in str(e.value)
    assert str(e.value).startswith(str(tmp_path / "c.toml"))


def test_bad_toml_and_bad_bytes(tmp_path: Path) -> None:
    with pytest.raises(ClusterFileError, match="not valid TOML"):
        load_text(tmp_path, "[cluster\n")
    f = tmp_path / "b.toml"
    f.write_bytes(b'[cluster]\nrate = "20\xffMbit"\n')
    with pytest.raises(ClusterFileError, match="not UTF-8"):
        load_cluster(f)
    with pytest.raises(ClusterFileError, match="cannot read"):
        load_cluster(tmp_path / "missing.toml")
    with pytest.raises(ClusterFileError, match="servers: missing"):
        load_text(tmp_path, '[cluster]\nrate = "1Mbit"\n')
    with pytest.raises(ClusterFileError, match="cluster.rate: missing"):
        load_text(tmp_path, GOOD.replace('rate = "20Mbit"', ""))


def test_explicit_links_must_make_a_full_mesh(tmp_path: Path) -> None:
    three = GOOD + ('[[servers]]\nname = "s3"\n'
                    'ports = [{ interface = "e", address = "10.3.0.1/24" }]\n')
    links = '[[links]]\na = "s1:eth1"\nb = "s2:eth1"\n'
    with pytest.raises(ClusterFileError, match="full mesh needs a link between s1-s3"):
        load_text(tmp_path, three + links)
    with pytest.raises(ClusterFileError, match="links\\[0\\].b"):
        load_text(tmp_path, GOOD + '[[links]]\na = "s1:eth1"\nb = "s9:eth1"\n')
    with pytest.raises(ClusterFileError, match="already used"):
        load_text(tmp_path, GOOD + '[[links]]\na = "s1:ext0"\nb = "s2:eth1"\n')
    spec = load_text(tmp_path, GOOD + links)
    assert spec.links[0].a == ("s1", "eth1")  # type: ignore[attr-defined]


def test_routes_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ClusterFileError, match="cluster.routes: no such file"):
        load_text(tmp_path, GOOD.replace('rate = "20Mbit"', 'rate = "20Mbit"\nroutes = "x"'))


def test_rates_are_tc_rates() -> None:
    assert parse_rate("20Mbit", "f", "k") == 20_000_000
    assert parse_rate(15000, "f", "k") == 15000
    with pytest.raises(ClusterFileError, match="ambiguous"):
        parse_rate("20Mbps", "f", "k")  # tc reads bps as bytes: refused


@settings(max_examples=200)
@given(st.text(max_size=12))
def test_rate_and_time_parsers_never_crash(text: str) -> None:
    for parse in (parse_rate, parse_time):
        try:
            parse(text, "f", "k")
        except ClusterFileError as e:
            assert e.key == "k"


def test_direct_rate_reaches_directvlb(tmp_path: Path) -> None:
    from routebricks.cluster.config import server_config

    plain = load_text(tmp_path, GOOD)
    assert plain.direct_rate is None
    assert "DIRECT_RATE" not in server_config(plain, "s1")  # the element's default: the link
    spec = load_text(tmp_path, GOOD.replace('rate = "20Mbit"',
                                            'rate = "20Mbit"\ndirect_rate = "5Mbit"', 1))
    assert spec.direct_rate == 5_000_000
    line = next(x for x in server_config(spec, "s1").splitlines() if "DirectVLB(" in x)
    assert "LINK_RATE 20Mbps, DIRECT_RATE 5Mbps," in line


def test_a_single_server_cluster_is_a_plain_router(tmp_path: Path) -> None:
    import subprocess
    import sys

    from routebricks.cluster.config import server_config

    spec = load_text(tmp_path, """
[cluster]
name = "one"
rate = "20Mbit"

[[servers]]
name = "s1"
ports = [{ interface = "ext0", address = "10.1.0.1/24", host = "h1" },
         { interface = "ext1", address = "10.2.0.1/24", host = "h2" }]
""")
    text = server_config(spec, "s1")
    assert "DirectVLB" not in text and "ClusterSwitch" not in text and "BFD" not in text
    (tmp_path / "one.click").write_text(text)
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", "check",
                          str(tmp_path / "one.click")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("cmd", [["cluster", "up", "examples/rb4.toml"],
                                 ["testbed", "up", "examples/testbed.toml"]])
def test_a_bad_prefix_is_refused_before_anything_is_made(cmd: list[str]) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", *cmd, "--prefix",
                          "rbbench-"], capture_output=True, text=True, cwd=repo)
    assert res.returncode == 2
    assert "'rbbench-' is not rb + six hex digits" in res.stderr
    assert "Traceback" not in res.stderr
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "rbbench-" not in ns


@pytest.mark.parametrize("example", ["rb4.toml", "nfly4.toml"])
def test_status_counts_input_at_each_external_port_only(example: str) -> None:
    # `cluster status` counts a server's input at the device reads of the external ports
    # its generated configuration names: one per port, none on internal links or switches.
    from routebricks.cluster.config import is_external_input, server_config
    from routebricks.engine.router import parse_text

    spec = load_cluster(REPO / "examples" / example)
    for s in spec.servers:
        g = parse_text(server_config(spec, s.name, None), "<cluster>")
        reads = [n for n, d in g.elements.items() if is_external_input(n, d.class_name)]
        assert len(reads) == len(s.ports), (s.name, reads)
    assert not is_external_input("extra/FromDevice@4", "FromDevice")
    assert not is_external_input("ext0/Counter@5", "Counter")
