"""What the BFD element sends, read by decoders that are not ours: a pcap written by ToDump
from one session's output (two sessions back to back, coming Up) parses as BFD with the
right fields in tshark (Wireshark's dissector, with its IP and UDP checksum validation) and
in scapy (scapy.contrib.bfd)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elementtest import q, read_packets
from scapy.all import IP, UDP, Ether
from scapy.contrib.bfd import BFD as ScapyBFD

from routebricks.engine.router import Router

A = "LOCAL 169.254.1.1, PEER 169.254.1.2, SRC_MAC fe:00:00:00:00:01, DST_MAC fe:00:00:01:00:01"
B = "LOCAL 169.254.1.2, PEER 169.254.1.1, SRC_MAC fe:00:00:01:00:01, DST_MAC fe:00:00:00:00:01"
TSHARK_FIELDS = ["bfd.version", "bfd.sta", "bfd.diag", "bfd.detect_time_multiplier",
                 "bfd.message_length", "bfd.my_discriminator", "bfd.your_discriminator",
                 "bfd.desired_min_tx_interval", "bfd.required_min_rx_interval",
                 "bfd.flags.p", "bfd.flags.f", "bfd.flags.m", "ip.ttl", "udp.srcport",
                 "udp.dstport", "ip.checksum.status", "udp.checksum.status", "eth.src",
                 "eth.dst"]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A's frames while the two sessions come Up (a Tee copies them to a pcap)."""
    out = tmp_path_factory.mktemp("bfd") / "a.pcap"
    # A first run compiles the kernels (numba, cold cache on a fresh clone), so the timed
    # run below sees only packets.
    warm = Router.from_text(f"a :: BFD({A}) -> b :: BFD({B}) -> a;")
    warm.hold = True
    try:
        warm.run(time_limit=0.5)
    finally:
        warm.cleanup()
    r = Router.from_text(f"""
        a :: BFD({A}, DISCRIMINATOR 0x1111, SPORT 50001, MULTIPLIER 4) -> t :: Tee(2);
        t[0] -> Queue -> Unqueue -> b :: BFD({B}, DISCRIMINATOR 0x2222)
             -> Queue -> Unqueue -> a;
        t[1] -> ToDump({q(out)});
    """)
    r.hold = True  # no sources: run for the time given
    try:
        # long enough for the Poll after Up and some periodic packets (numba may compile
        # the field kernels first)
        r.run(time_limit=2.0)
    finally:
        r.cleanup()
    assert r.read_handler("a.state") == "Up"
    return out


def test_tshark_decodes_our_frames(capture: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("needs tshark (Debian's tshark package)")
    cmd = [tshark, "-r", str(capture), "-Y", "bfd", "-T", "fields", "-E", "separator=,",
           "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [dict(zip(TSHARK_FIELDS, line.split(","), strict=True))
            for line in res.stdout.splitlines() if line.strip()]
    assert len(rows) >= 3
    for row in rows:
        n = {k: int(v, 0) for k, v in row.items() if not k.startswith("eth.")}
        assert (n["bfd.version"], n["bfd.detect_time_multiplier"], n["bfd.message_length"]) \
            == (1, 4, 24)
        assert n["bfd.my_discriminator"] == 0x1111 and n["bfd.flags.m"] == 0
        assert (n["ip.ttl"], n["udp.srcport"], n["udp.dstport"]) == (255, 50001, 3784)
        assert n["ip.checksum.status"] == 1 and n["udp.checksum.status"] == 1  # 1: good
        assert not (n["bfd.flags.p"] and n["bfd.flags.f"])
        assert (row["eth.src"], row["eth.dst"]) == ("fe:00:00:00:00:01", "fe:00:00:01:00:01")
    first, last = rows[0], rows[-1]
    assert int(first["bfd.sta"], 0) == 1 and int(first["bfd.your_discriminator"], 0) == 0
    assert int(first["bfd.desired_min_tx_interval"]) == 1_000_000  # slow while Down
    assert int(last["bfd.sta"], 0) == 3 and int(last["bfd.your_discriminator"], 0) == 0x2222
    assert int(last["bfd.desired_min_tx_interval"]) == 100_000
    assert int(last["bfd.required_min_rx_interval"]) == 100_000
    assert any(int(r["bfd.flags.p"]) for r in rows)  # the Poll after Up ...
    assert any(int(r["bfd.flags.f"]) for r in rows)  # ... and the Final answering B's


def test_scapy_decodes_our_frames(capture: Path) -> None:
    pkts = read_packets(capture)
    assert len(pkts) >= 3
    states = []
    for p in pkts:
        assert isinstance(p, Ether) and p.haslayer(ScapyBFD), p.summary()
        ip, udp, bfd = p[IP], p[UDP], p[ScapyBFD]
        assert (ip.src, ip.dst, ip.ttl, udp.sport, udp.dport) == (
            "169.254.1.1", "169.254.1.2", 255, 50001, 3784)
        sums = (ip.chksum, udp.chksum)
        del ip.chksum, udp.chksum
        again = Ether(bytes(p))
        assert (again[IP].chksum, again[UDP].chksum) == sums
        assert (bfd.version, bfd.detect_mult, bfd.len, bfd.my_discriminator) == (1, 4, 24,
                                                                                  0x1111)
        states.append(bfd.sta)
    assert states[0] == 1 and states[-1] == 3 and 0 not in states
    assert states == sorted(states)  # Down, (Init,) then Up: the session only went up
