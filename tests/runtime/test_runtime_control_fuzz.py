"""Random control-socket byte streams against ONE running router: random bytes, valid and
invalid commands, truncated WRITEDATA, huge declared lengths. Every connection gets the
greeting and then well-formed replies and a clean close; the router prints no traceback,
applies no truncated write, and afterwards still answers and forwards."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from controltest import TABLE, RunningRouter, parse_replies, running_router, session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routebricks.runtime.control import ControlClient
from routebricks.runtime.framing import MAX_DATA


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    with running_router(tmp_path_factory.mktemp("fuzz")) as r:
        yield r


# Commands that leave the router forwarding (no 'src.active false', no route change).
VALID = [b"READ c.count\r\n", b"READEACH c.count\r\n", b"READ rt.table\r\n",
         b"READ rt.lookup 10.1.2.3\r\n", b"CHECKREAD c.count\r\n", b"CHECKWRITE c.reset\r\n",
         b"WRITE c.reset\r\n", b"WRITE rt.lookup 10.9.9.9\r\n", b"read c.count\n",
         b"READ nosuch.count\r\n", b"READ c.nosuch\r\n", b"WRITE nosuch.x 1\r\n",
         b"CHECKWRITE rt.nosuch\r\n", b"QUIT\r\n", b"\r\n", b"   \n"]
INVALID = [b"FROB c.count\r\n", b"READ\r\n", b"WRITE\r\n", b"WRITEDATA\r\n",
           b"WRITEDATA c.reset\r\n", b"WRITEDATA c.reset -1\r\n", b"WRITEDATA c.reset x\r\n",
           b"WRITEDATA c.reset 1 2\r\n", b"READ c.count\x00\r\n", b"\xff\xfe\r\n"]
ROUTES = b"add 12.0.0.0/8 1\nremove 10.0.0.0/8\n"  # must never be applied (always cut short)

writedata = st.builds(lambda spec, data: b"WRITEDATA %s %d\r\n%s" % (spec, len(data), data),
                      st.sampled_from([b"rt.lookup", b"c.reset", b"nosuch.x", b"c.count"]),
                      st.binary(max_size=64) | st.text(max_size=32).map(str.encode))
huge = st.integers(MAX_DATA + 1, 10**40).map(lambda n: b"WRITEDATA c.reset %d\r\n" % n)
junk_line = st.text(max_size=40).map(lambda t: t.encode(errors="surrogatepass") + b"\r\n")
piece = st.one_of(st.sampled_from(VALID), st.sampled_from(INVALID), st.binary(max_size=200),
                  junk_line, writedata, huge)
truncated = st.integers(0, len(ROUTES) - 1).map(
    lambda cut: b"WRITEDATA rt.ctrl %d\r\n%s" % (len(ROUTES), ROUTES[:cut]))
streams = st.builds(lambda body, tail: b"".join(body) + tail, st.lists(piece, max_size=12),
                    st.just(b"") | truncated)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_random_streams_get_greeting_replies_and_a_clean_close(router: RunningRouter,
                                                               stream: bytes) -> None:
    replies = parse_replies(session(router.sock, stream))
    assert all(100 <= r.code <= 599 for r in replies)
    router.assert_quiet()


def test_router_still_answers_and_forwards_after_the_fuzzing(router: RunningRouter) -> None:
    with ControlClient(router.sock) as c:
        assert c.read("rt.table") == TABLE  # no truncated rt.ctrl was applied
        first = int(c.read("c.count"))
        time.sleep(0.3)
        assert int(c.read("c.count")) > first
    router.assert_quiet()
