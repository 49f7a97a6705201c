"""The k-ary n-fly cluster file: the butterfly it makes (who is where, which links), the
intermediate servers it adds, and every mistake named with the file, the key and a hint."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routebricks.cluster.nfly import arrange, digit
from routebricks.cluster.spec import ClusterFileError, load_cluster

REPO = Path(__file__).resolve().parents[2]
NFLY4 = REPO / "examples" / "nfly4.toml"


def io_servers(count: int, first: int = 1) -> str:
    return "".join(f'[[servers]]\nname = "s{i}"\nports = [{{ interface = "ext0", '
                   f'address = "10.{i}.0.1/24", host = "h{i}" }}]\n'
                   for i in range(first, first + count))


def intermediate(name: str, role: bool = True) -> str:
    return (f'[[servers]]\nname = "{name}"\n' + ('role = "intermediate"\n' if role else "")
            + "ports = []\n")


HEAD = '[cluster]\nrate = "20Mbit"\ntopology = "nfly"\nk = 2\n'
GOOD = HEAD + io_servers(4)


def load_text(tmp_path: Path, text: str) -> object:
    f = tmp_path / "c.toml"
    f.write_text(text)
    return load_cluster(f)


def mistake(tmp_path: Path, text: str, key: str, *words: str) -> ClusterFileError:
    with pytest.raises(ClusterFileError) as e:
        load_text(tmp_path, text)
    assert e.value.key == key, str(e.value)
    for w in words:
        assert w in str(e.value), str(e.value)
    assert str(e.value).startswith(str(tmp_path / "c.toml"))
    return e.value


def test_the_example_is_a_2ary_2fly_with_added_intermediates() -> None:
    spec = load_cluster(NFLY4)
    assert spec.topology == "nfly" and spec.k == 2 and spec.nfly is not None
    assert [(s.name, s.role) for s in spec.servers] == [
        ("s1", "io"), ("s2", "io"), ("s3", "io"), ("s4", "io"), ("i1-0", "intermediate"),
        ("i1-1", "intermediate"), ("i2-0", "intermediate"), ("i2-1", "intermediate")]
    assert spec.nfly.n == 2 and spec.nfly.paths == 2
    assert spec.internal_rate == spec.rate  # R each way on every link
    assert len(spec.links) == 8
    assert {frozenset((ln.a[0], ln.b[0])) for ln in spec.links} == {
        frozenset(p) for p in [("s1", "i1-0"), ("s2", "i1-0"), ("s3", "i1-1"), ("s4", "i1-1"),
                               ("i1-0", "i2-0"), ("i1-0", "i2-1"), ("i1-1", "i2-0"),
                               ("i1-1", "i2-1")]}
    assert spec.links[0].a == ("s1", "to-i1-0") and spec.links[0].b == ("i1-0", "to-s1")
    assert [spec.mac_server(s) for s in spec.servers[:4]] == [0, 1, 2, 3]
    assert spec.nfly.route(0, 1, 2) == ["s1", "i1-0", "i2-1", "i1-1", "s3"]


def test_listed_intermediates_fill_stage_one_first_and_the_rest_are_added(
        tmp_path: Path) -> None:
    text = HEAD + intermediate("m1") + io_servers(2) + intermediate("m2", role=False) \
        + io_servers(2, first=3)
    spec = load_text(tmp_path, text)
    assert [(s.name, s.role) for s in spec.servers] == [
        ("m1", "intermediate"), ("s1", "io"), ("s2", "io"), ("m2", "intermediate"),
        ("s3", "io"), ("s4", "io"), ("i2-0", "intermediate"), ("i2-1", "intermediate")]
    b = spec.nfly
    assert b.switches == {(1, 0): "m1", (1, 1): "m2", (2, 0): "i2-0", (2, 1): "i2-1"}
    assert b.io == ["s1", "s2", "s3", "s4"]
    # Terminal numbers, not file indexes, go in the MAC.
    assert spec.mac_server(spec.server("s3")) == 2 and spec.server("s3").index == 4


def test_explicit_links_must_be_the_butterflys(tmp_path: Path) -> None:
    spec = load_cluster(NFLY4)
    ok = "".join(f'[[links]]\na = "{ln.a[0]}:up{i}"\nb = "{ln.b[0]}:dn{i}"\n'
                 for i, ln in enumerate(spec.links))
    got = load_text(tmp_path, GOOD + ok)
    assert got.links[4].a == ("i1-0", "up4")  # type: ignore[attr-defined]
    wrong = ok.replace('a = "s2:up1"\nb = "i1-0:dn1"', 'a = "s2:up1"\nb = "i1-1:dn1"')
    mistake(tmp_path, GOOD + wrong, "links[1]", "s2-i1-1 is not a link of a 2-ary 2-fly",
            "s2's links go to i1-0")
    short = "".join("[[links]]\n" + block for block in ok.split("[[links]]\n")[1:-1])
    mistake(tmp_path, GOOD + short, "links", "needs a link between i1-1 and i2-1",
            "one [[links]] table per butterfly link")


@pytest.mark.parametrize("text, key, words", [
    (HEAD.replace("k = 2\n", ""), "cluster.k", ("missing", "k = 2")),
    (HEAD.replace("k = 2", "k = 1"), "cluster.k", ("1 is not a switch degree", "from 2")),
    (HEAD.replace("k = 2", 'k = "two"'), "cluster.k", ("'two' is not a switch degree",)),
    (HEAD.replace("k = 2", "k = true"), "cluster.k", ("True is not a switch degree",)),
    (HEAD.replace('topology = "nfly"\n', ""), "cluster.k",
     ("degree of a k-ary n-fly", 'topology = "nfly"')),
    (HEAD.replace("nfly", "torus"), "cluster.topology", ("not supported", "nfly")),
])
def test_cluster_keys(tmp_path: Path, text: str, key: str, words: tuple[str, ...]) -> None:
    mistake(tmp_path, text + io_servers(4), key, *words)


def test_the_io_servers_must_be_a_power_of_k(tmp_path: Path) -> None:
    e = mistake(tmp_path, HEAD + io_servers(6), "servers",
                "6 io servers: a 2-ary n-fly has k^n of them", "4 or 8 io servers for k = 2")
    assert "k = 6" in str(e)  # a 6-ary 1-fly takes six
    mistake(tmp_path, HEAD.replace("k = 2", "k = 3") + io_servers(4), "servers",
            "3 or 9 io servers for k = 3", "or k = 2")
    mistake(tmp_path, HEAD + intermediate("m1"), "servers", "no io server")


def test_too_many_intermediates(tmp_path: Path) -> None:
    extra = "".join(intermediate(f"m{i}") for i in range(5))
    mistake(tmp_path, GOOD + extra, "servers[8]", "'m4' is one intermediate server too many",
            "has 4 (2 stages of 2)", "not listed are added, named i<stage>-<w>")


def test_an_added_name_may_not_be_taken(tmp_path: Path) -> None:
    text = HEAD + io_servers(3) + ('[[servers]]\nname = "i2-1"\nports = [{ interface = '
                                   '"ext0", address = "10.9.0.1/24" }]\n')
    mistake(tmp_path, text, "servers", "would be named 'i2-1', which a listed server has",
            "list every intermediate server")


@pytest.mark.parametrize("server, key, words", [
    (intermediate("m1").replace("intermediate", "spine"), "servers[4].role",
     ("'spine' is not a role", "io or intermediate")),
    ('[[servers]]\nname = "m1"\nrole = "intermediate"\nports = [{ interface = "e", '
     'address = "10.9.0.1/24" }]\n', "servers[4].ports",
     ("an intermediate server has no external ports", 'role = "io"')),
    ('[[servers]]\nname = "m1"\nrole = "io"\nports = []\n', "servers[4].ports",
     ("missing", 'role = "intermediate"')),
])
def test_roles(tmp_path: Path, server: str, key: str, words: tuple[str, ...]) -> None:
    mistake(tmp_path, GOOD + server, key, *words)


def test_a_mesh_has_no_intermediate_servers(tmp_path: Path) -> None:
    mesh = '[cluster]\nrate = "20Mbit"\n' + io_servers(2)
    mistake(tmp_path, mesh + intermediate("m1"), "servers[2].role",
            "a full mesh has no intermediate servers", 'topology = "nfly"')
    mistake(tmp_path, mesh + intermediate("m1", role=False), "servers[2].ports", "missing")
    spec = load_text(tmp_path, mesh + io_servers(1, first=3).replace(
        "[[servers]]\n", '[[servers]]\nrole = "io"\n'))
    assert [s.role for s in spec.servers] == ["io"] * 3  # type: ignore[attr-defined]


def test_no_direct_rate_and_a_size_limit(tmp_path: Path) -> None:
    mistake(tmp_path, GOOD.replace("k = 2", 'k = 2\ndirect_rate = "1Mbit"'),
            "cluster.direct_rate", "no direct path")
    with pytest.raises(Exception, match="at most 256 in all"):
        arrange(2, [f"s{i}" for i in range(128)], [], set(), 256)


def test_internal_rate_is_r_times_the_busiest_io_server(tmp_path: Path) -> None:
    two = GOOD.replace('host = "h1" }]', 'host = "h1" }, { interface = "ext1", '
                       'address = "10.11.0.1/24" }]')
    assert load_text(tmp_path, two).internal_rate == 40_000_000  # type: ignore[attr-defined]
    given_rate = load_text(tmp_path, GOOD.replace("k = 2", 'k = 2\ninternal_rate = "7Mbit"'))
    assert given_rate.internal_rate == 7_000_000  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- the model
@given(st.sampled_from([(2, 1), (2, 2), (2, 3), (2, 4), (3, 2), (3, 3), (4, 2), (5, 2)]))
def test_the_butterfly_is_consistent(kn: tuple[int, int]) -> None:
    k, n = kn
    io = [f"s{t}" for t in range(k**n)]
    b, added = arrange(k, io, [], set(io), 256)
    assert len(added) == n * k ** (n - 1) == len(b.switches)
    edges = b.edges()
    assert len(edges) == n * k**n and len({frozenset(e) for e in edges}) == len(edges)
    # Every link appears on both ends; a switch has k down and (below the top) k up.
    for name in io + added:
        ports = b.ports(name)
        stage = b.position(name)[0]
        assert len(ports) == (1 if stage == 0 else k if stage == n else 2 * k)
        for port, peer in ports:
            back = [p for p, q in b.ports(peer) if q == name]
            assert len(back) == 1
            if stage:  # a switch's down port faces a lower stage's up port, and back
                down = port < k
                assert b.position(peer)[0] == stage - 1 if down else stage + 1
    # Every route is a walk over links, up to top switch X, down by the output's digits.
    for s, x, d in itertools.product(range(k**n), range(k ** (n - 1)), range(k**n)):
        route = b.route(s, x, d)
        assert route[0] == io[s] and route[-1] == io[d] and len(route) == 2 * n + 1
        assert route[n] == b.switches[(n, x)]
        for a, z in itertools.pairwise(route):
            assert z in dict(b.ports(a)).values()
        for m in range(1, n):  # down from stage m + 1 by the output's digit m
            here = route[2 * n - m]
            ports = dict(b.ports(route[2 * n - m - 1]))
            assert ports[digit(d, k, m)] == here
