"""The control socket's framing on its own (no sockets): however the bytes arrive, what
they mean is the same; WRITEDATA is all or nothing; any bytes give requests or printable,
bounded answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.runtime.framing import Answer, CommandReader, Request, message, printable
from routebricks.runtime.requests import OK


def items(reader: CommandReader) -> list[Request | Answer]:
    out = []
    while (item := reader.next()) is not None:
        out.append(item)
    return out


def parse(stream: bytes, cuts: list[int] | None = None, **limits: int) -> list[object]:
    """Every item of ``stream`` fed in pieces cut at ``cuts``, then what was left over."""
    r = CommandReader(**limits)
    got: list[object] = []
    last = 0
    for cut in sorted(cuts or []) + [len(stream)]:
        r.feed(stream[last:cut])
        last = cut
        got += items(r)
    return [*got, r.leftover()]


specs = st.from_regex(r"[A-Za-z_@/0-9]{1,12}\.[a-z_]{1,8}", fullmatch=True)
commands = st.one_of(
    st.builds(lambda s: f"READ {s}\r\n".encode(), specs),
    st.builds(lambda s, v: f"WRITE {s} {v}\n".encode(), specs, st.text("abc 12-", max_size=9)),
    st.builds(lambda s, v: b"WRITEDATA %s %d\r\n%s" % (s.encode(), len(v.encode()),
                                                       v.encode()), specs, st.text()),
    st.just(b"QUIT\r\n"), st.binary(max_size=30))


@settings(max_examples=200)
@given(st.lists(commands, max_size=8).map(b"".join), st.data())
def test_framing_does_not_depend_on_how_bytes_arrive(stream: bytes,
                                                     data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
    assert parse(stream, cuts, max_line=64, max_data=1000) == parse(stream, max_line=64,
                                                                     max_data=1000)


@settings(max_examples=200)
@given(specs, st.text(max_size=200), st.data())
def test_writedata_is_all_or_nothing(spec: str, value: str, data: st.DataObject) -> None:
    body = value.encode()
    stream = f"WRITEDATA {spec} {len(body)}\r\n".encode() + body
    assert parse(stream) == [Request("write", spec, value), None]
    cut = data.draw(st.integers(len(stream) - len(body), len(stream) - 1)) if body else None
    if cut is not None:  # any shorter stream: no write, and the reason at the end
        got = parse(stream[:cut])
        assert got[:-1] == [] and "nothing was written" in str(got[-1])


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_give_requests_or_printable_answers(stream: bytes) -> None:
    for item in parse(stream, max_line=100, max_data=50)[:-1]:
        assert isinstance(item, Request | Answer)
        if isinstance(item, Answer):
            for line in message(item.code, item.text).split(b"\r\n")[:-1]:
                assert line[:3].isdigit() and line.decode()[4:].isprintable()


@given(st.text(max_size=500), st.integers(1, 100))
def test_printable_is_printable_and_short(text: str, limit: int) -> None:
    out = printable(text, limit)
    assert out.isprintable() and len(out) <= limit + 3


def test_lengths_and_lines_are_bounded() -> None:
    assert parse(b"WRITEDATA a.b 1001\r\nxyz", max_data=1000)[0] == Answer(
        500, "WRITEDATA of 1001 bytes is over the maximum of 1000; closing the connection",
        close=True)
    assert parse(b"x" * 65, max_line=64)[0].close  # type: ignore[union-attr]
    assert parse(b"x" * 64 + b"\n", max_line=64)[0].code == 501  # type: ignore[union-attr]
    got = parse(b"WRITEDATA a.b 0\r\nQUIT\r\nREAD a.b\r\n")
    assert got == [Request("write", "a.b", ""), Answer(OK, "Goodbye!", close=True), None]


def test_multi_line_messages_use_click_continuations() -> None:
    assert message(520, "bad route\n  add 1.2.3.4/40 1\n") == (
        b"520-bad route\r\n520   add 1.2.3.4/40 1\r\n")
    many = message(520, "\n".join(f"line {i}" for i in range(100)))
    assert many.count(b"\r\n") == 20 and b"(81 more lines)" in many
