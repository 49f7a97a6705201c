"""Streaming pcap reads (PcapReader, FromDump): records across chunk ends, held batches
that later reads must not overwrite, pipes, the background check of the record chain, and
FromDump's default batch. Files are written by scapy (an independent writer)."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.utils import RawPcapWriter

from routebricks.engine.element import Element
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, PcapError
from routebricks.packet.batch import PacketBatch
from routebricks.packet.pcap import RECORD_HEADER, PcapReader


def write_raw(path: Path, packets: list[bytes], nano: bool = False, endian: str = "<") -> None:
    """A pcap of ``packets`` with timestamps 1700000000 + i ms (+ 7 ns), written by scapy."""
    with RawPcapWriter(str(path), linktype=1, nano=nano, endianness=endian) as w:
        w.write_header(None)  # scapy otherwise leaves it out when the first packet is empty
        for i, p in enumerate(packets):
            sec, frac = 1_700_000_000 + i // 1000, (i % 1000) * (10**6 if nano else 1000)
            w.write_packet(p, sec=sec, usec=frac + (7 if nano else 0))


def stream(r: PcapReader, want: int) -> list[PacketBatch]:
    out = []
    while r.available(want):
        b = r.read(want)
        assert b is not None
        out.append(b)
    assert r.read(want) is None
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.one_of(st.integers(0, 120), st.integers(1000, 9000)), max_size=120),
    chunk=st.integers(4096, 30000),
    want=st.integers(1, 70),
    nano=st.booleans(),
    endian=st.sampled_from(["<", ">"]),
)
def test_streamed_packets_are_the_file_in_order(
    tmp_path: Path, sizes: list[int], chunk: int, want: int, nano: bool, endian: str
) -> None:
    rng = np.random.default_rng(len(sizes))
    packets = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes]
    f = tmp_path / "s.pcap"
    write_raw(f, packets, nano, endian)
    with PcapReader(f, chunk=chunk) as r:
        assert r.count == len(packets) and r.nanosecond == nano
        batches = stream(r, want)
        got = [p for b in batches for p in b.to_list()]
        assert got == packets
        # Whole batches except at the end: leftovers move to the next chunk (which has room
        # for a whole batch unless records are large against the chunk).
        if sizes and (max(sizes) + 16) * want < chunk // 2:
            assert all(len(b) == want for b in batches[:-1])
        ts = np.concatenate([b.anno("timestamp") for b in batches]) if batches else []
        unit = 1 if nano else 1000
        for i, t in enumerate(ts):
            frac = (i % 1000) * (10**6 if nano else 1000) + (7 if nano else 0)
            assert t == (1_700_000_000 + i // 1000) * 10**9 + frac * unit
        assert r.filepos == f.stat().st_size


def test_held_batches_keep_their_bytes_and_buffers_are_reused(tmp_path: Path) -> None:
    packets = [bytes([i % 251]) * 60 for i in range(20000)]  # 1.5 MB, several chunks
    f = tmp_path / "h.pcap"
    write_raw(f, packets)
    with PcapReader(f, chunk=1 << 16) as r:
        held = r.read(100)
        assert held is not None
        first = held.to_list()
        rest = stream(r, 100)
        # A Queue may hold a batch while the file is read on: its packets must not change.
        assert held.to_list() == first == packets[:100]
        assert [p for b in rest for p in b.to_list()] == packets[100:]
        del rest
        r.rewind()
        pools, at = set(), 0
        while r.available(100):  # each batch dropped at once, as Discard does
            b = r.read(100)
            assert b is not None
            pools.add(id(b.pool))
            assert b.to_list() == packets[at : at + 100]
            at += len(b)
        # 23 chunks were read into the few buffers no batch held (``held`` keeps one).
        assert r.records == len(packets) and len(pools) <= 4


def test_packets_are_used_in_place_with_the_record_header_as_headroom(tmp_path: Path) -> None:
    packets = [bytes(range(60))] * 10
    f = tmp_path / "z.pcap"
    write_raw(f, packets)
    with PcapReader(f) as r:
        b = r.read(10)
        assert b is not None and b.headroom == RECORD_HEADER and b.tailroom == 0
        b.push_front(14)  # an Ethernet header fits in front, where the record header was
        assert len(b.to_list()[0]) == 74
    with PcapReader(f, headroom=64, tailroom=32) as r:
        b = r.read(10)
        assert b is not None and b.headroom >= 64 and b.tailroom >= 32
        assert b.to_list() == packets


def test_truncated_file_is_an_error_before_any_packet(tmp_path: Path) -> None:
    packets = [b"x" * 100] * 50
    f = tmp_path / "t.pcap"
    write_raw(f, packets)
    f.write_bytes(f.read_bytes()[:-30])
    at = 24 + 49 * 116
    msg = rf"truncated packet record at byte offset {at} \(record 50 needs 116 bytes"
    with pytest.raises(PcapError, match=msg):
        PcapReader(f)
    r = PcapReader(f, background=True)  # checked on another core
    with pytest.raises(PcapError, match=msg):
        r.available(10)  # reading waits for the check
    r.close()
    router = Router.from_text(f"FromDump({f}) -> c :: Counter -> Discard")
    with pytest.raises(ConfigError, match=msg):
        router.initialize()
    assert router.elements["c"].read("count") == "0"


def test_fromdump_reads_a_pipe_and_counts_a_truncated_end(tmp_path: Path,
                                                           capfd: pytest.CaptureFixture) -> None:
    packets = [bytes([i]) * (60 + i) for i in range(200)]
    f = tmp_path / "p.pcap"
    write_raw(f, packets)
    data = f.read_bytes()
    fifo = tmp_path / "fifo"
    for payload, whole in ((data, True), (data[:-10], False)):
        os.mkfifo(fifo)
        writer = threading.Thread(target=lambda p=payload: fifo.write_bytes(p))
        writer.start()
        r = Router.from_text(f"s :: FromDump({fifo}, STOP true) -> c :: Counter -> Discard")
        r.run(time_limit=10)
        writer.join()
        assert r.elements["s"].read("filesize") == "-"
        assert r.elements["s"].read("packets") == "-"
        assert r.elements["c"].read("count") == str(200 if whole else 199)
        drops = r.elements["s"].read("drops") if not whole else ""
        r.cleanup()
        fifo.unlink()
        if not whole:
            assert "truncated record" in drops
            assert "truncated packet record at byte offset" in capfd.readouterr().err


class StreamTestSizes(Element):
    """Records the size of every batch it passes on (test element)."""

    ABSTRACT = True  # not registered on definition: see the sizes_element fixture

    port_count = "1/1"
    processing = "a/a"

    def configure(self) -> None:
        self.sizes: list[int] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        self.sizes.append(len(batch))
        self.emit(0, batch)


@pytest.fixture
def sizes_element() -> Iterator[None]:
    """StreamTestSizes registered for one test only (the library's documentation tests
    look at every registered class)."""
    from routebricks.engine.element import REGISTRY

    REGISTRY["StreamTestSizes"] = StreamTestSizes
    yield
    REGISTRY.pop("StreamTestSizes", None)


def test_fromdump_batches_default_to_4096_and_follow_kp(tmp_path: Path,
                                                         sizes_element: None) -> None:
    packets = [b"y" * 60] * 10000
    f = tmp_path / "k.pcap"
    write_raw(f, packets)
    text = f"s :: FromDump({f}, STOP true) -> z :: StreamTestSizes -> Discard"
    for kp, want in ((None, [4096, 4096, 1808]), (1000, [1000] * 10)):
        r = Router.from_text(text)
        if kp:
            r.kp = kp
        r.run()
        assert r.elements["z"].sizes == want
        assert r.elements["s"].read("packets") == "10000"
        assert r.elements["s"].read("filesize") == str(f.stat().st_size)
        assert r.elements["s"].read("filepos") == str(f.stat().st_size)
        r.cleanup()


def test_record_header_bytes_are_free_after_the_scan(tmp_path: Path) -> None:
    # Writing into a packet's headroom overwrites its own record header, never the next
    # record's: the stream still reads every packet afterwards.
    packets = [bytes([i % 256]) * 50 for i in range(300)]
    f = tmp_path / "w.pcap"
    write_raw(f, packets)
    with PcapReader(f, chunk=4096) as r:
        seen = []
        while r.available(7):
            b = r.read(7)
            assert b is not None
            b.push_front(RECORD_HEADER)
            b.pool[b.off[:, None] + np.arange(RECORD_HEADER)] = 0xEE
            b.pull_front(RECORD_HEADER)
            seen += b.to_list()
        assert seen == packets
    assert struct.unpack("<I", f.read_bytes()[:4])[0] == 0xA1B2C3D4  # the file is untouched


def test_a_file_cut_while_it_is_read_ends_with_a_counted_drop(
        tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    packets = [bytes([i % 256]) * 200 for i in range(30000)]  # 6.5 MB: many chunks
    f = tmp_path / "cut.pcap"
    write_raw(f, packets)
    r = Router.from_text(f"s :: FromDump({f}, STOP true) -> c :: Counter -> Discard")
    r.initialize()  # the whole file is checked here
    os.truncate(f, 24 + 1000 * 216 + 100)  # then someone cuts it
    r.run(time_limit=10)
    got = int(r.elements["c"].read("count"))
    drops = r.elements["s"].read("drops")
    r.cleanup()
    assert got <= 1000  # what was read before the cut, and nothing made up
    assert "truncated record" in drops
    assert "truncated packet record at byte offset" in capfd.readouterr().err


def test_a_directory_or_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    for path, says in ((tmp_path, "Is a directory"), (tmp_path / "nope.pcap", "No such file")):
        r = Router.from_text(f"FromDump({path}) -> Discard")
        with pytest.raises(ConfigError, match=says):
            r.initialize()
