"""Switch (Click's switch.hh): every packet to OUTPUT, the switch handler, -1 drops."""

from __future__ import annotations

import pytest
from stdtest_util import batch_of
from test_std_docformat import check_doc

from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError

CONF = "Idle -> sw :: Switch({}) -> q0 :: Queue -> Discard; sw[1] -> q1 :: Queue -> Discard;" \
       " sw[2] -> q2 :: Queue -> Discard;"


def counts(r: Router) -> list[int]:
    out = []
    for name in ("q0", "q1", "q2"):
        n = 0
        while (b := r.find(name).pull(0)) is not None:
            n += len(b)
        out.append(n)
    return out


def test_docs():
    check_doc(get_class("Switch").doc())


def test_default_output_zero_and_handler_moves_packets():
    r = Router.from_text(CONF.format(""))
    r.initialize()
    sw = r.find("sw")
    assert sw.read("switch") == "0" and sw.read("config") == "0"
    sw.push(0, batch_of([b"a", b"b"]))
    sw.write("switch", "2")
    sw.push(0, batch_of([b"c"]))
    sw.write("switch", " 1 ")
    sw.push(0, batch_of([b"d", b"e", b"f"]))
    assert counts(r) == [2, 3, 1]
    assert sw.read("switch") == "1" and sw.read("config") == "1"
    assert not sw.drops


def test_negative_output_drops_and_counts():
    r = Router.from_text(CONF.format("-1"))
    r.initialize()
    sw = r.find("sw")
    sw.push(0, batch_of([b"a", b"b"]))
    assert counts(r) == [0, 0, 0] and sw.drops == {"switched off": 2}
    sw.write("switch", "-7")
    assert sw.read("switch") == "-7"
    sw.push(0, batch_of([b"c"]))
    assert sw.drops == {"switched off": 3}


def test_write_past_last_output_means_minus_one():
    r = Router.from_text(CONF.format("1"))
    r.initialize()
    sw = r.find("sw")
    sw.write("switch", "3")
    assert sw.read("switch") == "-1"
    sw.push(0, batch_of([b"x"]))
    assert counts(r) == [0, 0, 0] and sw.drops == {"switched off": 1}


@pytest.mark.parametrize("bad", ["one", "", "1.5", "99999999999999999999"])
def test_bad_handler_values_refused(bad):
    r = Router.from_text(CONF.format("2"))
    with pytest.raises(HandlerError, match="Switch output must be integer"):
        r.find("sw").write("switch", bad)
    assert r.find("sw").read("switch") == "2"


def test_output_too_large_is_a_configuration_error():
    r = Router.from_text(CONF.format("3"))
    with pytest.raises(ConfigError, match="output must be < 3"):
        r.initialize()
    with pytest.raises(ConfigError, match="OUTPUT"):
        Router.from_text(CONF.format("zero"))


def test_runs_with_infinite_source():
    from stdtest_util import run_text
    r = run_text("InfiniteSource(LIMIT 5) -> sw :: Switch(1) -> c0 :: Counter -> Discard;"
                 " sw[1] -> c1 :: Counter -> Discard;")
    assert r.read_handler("c0.count") == "0" and r.read_handler("c1.count") == "5"
