"""pcap files: what we write, scapy and tcpdump read identically; what scapy writes (both
timestamp resolutions), we read; broken files give errors naming file and byte offset."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter as ScapyPcapWriter
from scapy.utils import rdpcap, wrpcap

from routebricks.engine.router import Router
from routebricks.errors import PcapError
from routebricks.packet.pcap import read_pcap, write_pcap


def scapy_packets(n: int = 30) -> list:
    pkts = []
    for i in range(n):
        p = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
             / IP(src="10.0.0.1", dst=f"10.1.{i}.{i}")
             / (UDP(sport=1000 + i, dport=53) if i % 2 else TCP(sport=i + 1, dport=80))
             / (b"z" * (i * 7)))
        p.time = Decimal("1700000000.000000") + Decimal(i) / 1000 + Decimal("0.000000123")
        pkts.append(p)
    return pkts


@pytest.mark.parametrize("nano", [False, True])
def test_reads_what_scapy_writes(tmp_path: Path, nano: bool) -> None:
    pkts = scapy_packets()
    f = tmp_path / "s.pcap"
    wrpcap(str(f), pkts, nano=nano)
    got = read_pcap(f)
    assert got.nanosecond == nano
    assert got.linktype == 1
    assert got.batch.to_list() == [bytes(p) for p in pkts]
    ts = got.batch.anno("timestamp")
    for p, t in zip(pkts, ts, strict=True):
        want = int(p.time * 10**9) if nano else int(p.time * 10**6) * 1000
        assert int(t) == want


@pytest.mark.parametrize("nano", [False, True])
def test_scapy_and_tcpdump_read_what_we_write(tmp_path: Path, nano: bool) -> None:
    pkts = scapy_packets()
    src = tmp_path / "in.pcap"
    wrpcap(str(src), pkts, nano=True)
    out = tmp_path / "out.pcap"
    write_pcap(out, read_pcap(src).batch, nanosecond=nano)
    back = rdpcap(str(out))
    assert [bytes(p) for p in back] == [bytes(p) for p in pkts]
    for a, b in zip(back, pkts, strict=True):
        assert abs(float(a.time) - float(b.time)) < (1e-9 if nano else 1e-6)
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed (.ci/run installs it)")
    res = subprocess.run(["tcpdump", "-nn", "-r", str(out), "-x"], capture_output=True,
                         text=True, check=True)
    lines = [ln for ln in res.stdout.splitlines() if not ln.startswith("\t")]
    assert len(lines) == len(pkts)
    assert "10.0.0.1.1 > 10.1.0.0.80" in res.stdout


def test_router_copies_a_pcap_exactly(tmp_path: Path) -> None:
    pkts = scapy_packets(50)
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(src), pkts)
    r = Router.from_text(f"FromDump({src}) -> ToDump({dst}, SNAPLEN 0)")
    r.kp = 7  # several batches
    assert r.run() == "all sources done"
    r.cleanup()
    back = rdpcap(str(dst))
    assert [bytes(p) for p in back] == [bytes(p) for p in pkts]
    assert [p.time for p in back] == [p.time for p in rdpcap(str(src))]


def test_snaplen_truncates_but_keeps_original_length(tmp_path: Path) -> None:
    pkts = scapy_packets(5)
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(src), pkts)
    r = Router.from_text(f"FromDump({src}) -> ToDump({dst}, SNAPLEN 40)")
    r.run()
    r.cleanup()
    got = read_pcap(dst)
    assert all(len(p) <= 40 for p in got.batch.to_list())
    assert list(got.orig_len) == [len(p) for p in pkts]


def test_bad_magic_names_file_and_offset(tmp_path: Path) -> None:
    f = tmp_path / "bad.pcap"
    f.write_bytes(b"\x00\x01\x02\x03" + bytes(40))
    with pytest.raises(PcapError, match=r"bad\.pcap: bad magic number 0x00010203 at byte "
                                        r"offset 0"):
        read_pcap(f)


def test_pcapng_is_refused_with_a_hint(tmp_path: Path) -> None:
    f = tmp_path / "x.pcapng"
    with ScapyPcapWriter(str(f)) as w:  # scapy writes pcap here; fake an NG header instead
        w.write(scapy_packets(1))
    f.write_bytes(b"\x0a\x0d\x0d\x0a" + f.read_bytes()[4:])
    with pytest.raises(PcapError, match="pcapng"):
        read_pcap(f)


def test_truncated_record_names_byte_offset(tmp_path: Path) -> None:
    pkts = scapy_packets(3)
    f = tmp_path / "t.pcap"
    wrpcap(str(f), pkts)
    data = f.read_bytes()
    f.write_bytes(data[:-5])
    third = 24 + sum(16 + len(bytes(p)) for p in pkts[:2])
    with pytest.raises(PcapError, match=rf"t\.pcap: truncated packet record at byte offset "
                                        rf"{third} \(record 3"):
        read_pcap(f)
    f.write_bytes(data[:10])
    with pytest.raises(PcapError, match="truncated file header at byte offset 0"):
        read_pcap(f)


def test_fromdump_error_is_a_config_error_before_packets_move(tmp_path: Path) -> None:
    from routebricks.errors import ConfigError

    f = tmp_path / "nope.pcap"
    f.write_bytes(b"garbage!" * 10)
    r = Router.from_text(f"FromDump({f}) -> c :: Counter -> Discard")
    with pytest.raises(ConfigError, match="nope.pcap: bad magic number"):
        r.initialize()
    assert r.elements["c"].read("count") == "0"
