"""Tests for routebricks.io.afpacket (AF_PACKET rings) on veth pairs in private namespaces.

Tests that need root and network namespaces skip with the reason when those
are missing. Each such test gets its own namespace with a veth pair ``va`` <->
``vb`` and always removes it (which also removes the veths).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from routebricks.io import afpacket as af
from routebricks.io import tpacket as tp
from routebricks.io.afpacket import (
    RxRing,
    TxRing,
    fanout_group_id,
    frames_to_batch,
    open_queues,
    pool_layout,
)
from routebricks.io.sockets import fanout_arg

ETHERTYPE = 0x88B5  # IEEE "local experimental": nothing in the kernel reacts to it
ETH_HDR = bytes.fromhex("020000000002020000000001") + ETHERTYPE.to_bytes(2, "big")


# --------------------------------------------------------------------------
# Environment probing and fixtures
# --------------------------------------------------------------------------
def _netns_unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "AF_PACKET and network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN/CAP_SYS_ADMIN) for network namespaces"
    try:
        from pyroute2 import netns
    except ImportError as e:  # pragma: no cover
        return f"pyroute2 missing: {e}"
    probe = f"rbprobe{os.getpid()}{secrets.token_hex(2)}"
    try:
        netns.create(probe)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot test here"
        return f"cannot create a network namespace: {e!r}"
    with contextlib.suppress(Exception):
        netns.remove(probe)
    return None


@pytest.fixture(scope="module")
def netns_ok() -> None:
    reason = _netns_unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def _warm_numba() -> None:
    """Compile (or load from cache) the numba kernels once, outside any deadline."""
    af.warmup()


@dataclass
class VethNs:
    """A namespace holding a veth pair ``a`` <-> ``b`` (both up)."""

    name: str
    a: str = "va"
    b: str = "vb"

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """The calling (main) thread is in the namespace for the body."""
        from pyroute2 import netns

        netns.pushns(self.name)
        try:
            yield
        finally:
            netns.popns()

    def ipr(self):  # type: ignore[no-untyped-def]
        from pyroute2 import NetNS

        return NetNS(self.name, flags=0)

    def set_mtu(self, mtu: int) -> None:
        with self.ipr() as ipr:
            for n in (self.a, self.b):
                ipr.link("set", index=ipr.link_lookup(ifname=n)[0], mtu=mtu)


@pytest.fixture
def vethns(netns_ok: None) -> Iterator[VethNs]:
    from pyroute2 import NetNS, netns

    name = f"rbtio{os.getpid()}{secrets.token_hex(3)}"
    netns.create(name)
    try:
        v = VethNs(name)
        with v.inside():
            # No IPv6 (router solicitations, MLD) on the veths: less noise.
            for k in ("all", "default"):
                Path(f"/proc/sys/net/ipv6/conf/{k}/disable_ipv6").write_text("1\n")
        with NetNS(name, flags=0) as ipr:
            ipr.link("add", ifname=v.a, kind="veth", peer={"ifname": v.b})
            for n in ("lo", v.a, v.b):
                ipr.link("set", index=ipr.link_lookup(ifname=n)[0], state="up")
        yield v
    finally:
        netns.remove(name)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def make_frames(n: int, *, min_len: int = 60, max_len: int = 1514) -> list[bytes]:
    """``n`` frames of distinct content and varied length (experimental ethertype)."""
    rng = np.random.default_rng(1234)
    out = []
    for i in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        body = i.to_bytes(4, "big") + rng.integers(0, 256, length - 18, dtype=np.uint8).tobytes()
        out.append(ETH_HDR + body)
    return out


def ours(frame: bytes) -> bool:
    return frame[12:14] == ETHERTYPE.to_bytes(2, "big")


def raw_sender(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((ifname, 0))
    return s


def raw_receiver(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(af.ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((ifname, af.ETH_P_ALL))
    s.settimeout(0.2)
    return s


def drain_socket(s: socket.socket, want: int, timeout: float = 5.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        try:
            f = s.recv(65536)
        except TimeoutError:
            continue
        if ours(f):
            got.append(f)
    return got


def batch_frames(pool: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> list[bytes]:
    return [
        pool[o : o + n].tobytes() for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True)
    ]


def collect(
    rx: RxRing,
    want: int,
    *,
    batch: int = 64,
    timeout: float = 5.0,
    check: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
) -> list[bytes]:
    """Receive until ``want`` of our frames arrived (or timeout); checks each batch."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        rx.wait(0.05)
        pool, offs, lens, ts = rx.recv_batch(batch)
        assert offs.size <= batch
        if check is not None:
            check(pool, offs, lens, ts)
        got += [f for f in batch_frames(pool, offs, lens) if ours(f)]
    return got


def settle(rx: RxRing, seconds: float = 0.15) -> list[bytes]:
    """Whatever else arrives within ``seconds`` (to prove nothing more comes)."""
    extra: list[bytes] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rx.wait(0.02)
        extra += [f for f in batch_frames(*rx.recv_batch(256)[:3]) if ours(f)]
    return extra


def check_layout(headroom: int, tailroom: int) -> Callable[..., None]:
    def check(pool: np.ndarray, offs: np.ndarray, lens: np.ndarray, ts: np.ndarray) -> None:
        assert pool.dtype == np.uint8 and offs.dtype == np.int64
        assert lens.dtype == np.int32 and ts.dtype == np.int64
        assert offs.shape == lens.shape == ts.shape
        if offs.size == 0:
            assert pool.size == 0
            return
        assert offs[0] == headroom
        gaps = offs[1:] - (offs[:-1] + lens[:-1])
        assert np.all(gaps == headroom + tailroom)
        assert pool.size == offs[-1] + lens[-1] + tailroom
        now = time.time_ns()
        assert np.all(ts > now - 120 * 10**9) and np.all(ts <= now + 10**9)
        assert np.all(np.diff(ts) >= 0)

    return check


# --------------------------------------------------------------------------
# Pure tests (no root)
# --------------------------------------------------------------------------
def test_struct_layouts_match_kernel_header(tmp_path: Path) -> None:
    """Our numpy dtypes / struct formats agree with linux/if_packet.h (via offsetof)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/linux/if_packet.h").exists():
        pytest.skip("needs a C compiler and linux/if_packet.h")
    checks = {
        "tpacket2_hdr": (tp.TPACKET2_HDR, {}),
        "tpacket3_hdr": (
            tp.TPACKET3_HDR,
            {
                "tp_rxhash": "hv1.tp_rxhash",
                "tp_vlan_tci": "hv1.tp_vlan_tci",
                "tp_vlan_tpid": "hv1.tp_vlan_tpid",
            },
        ),
        "tpacket_block_desc": (
            tp.TPACKET_BLOCK_DESC,
            {
                "block_status": "hdr.bh1.block_status",
                "num_pkts": "hdr.bh1.num_pkts",
                "offset_to_first_pkt": "hdr.bh1.offset_to_first_pkt",
                "blk_len": "hdr.bh1.blk_len",
                "seq_num": "hdr.bh1.seq_num",
                "ts_first_sec": "hdr.bh1.ts_first_pkt.ts_sec",
                "ts_first_nsec": "hdr.bh1.ts_first_pkt.ts_nsec",
                "ts_last_sec": "hdr.bh1.ts_last_pkt.ts_sec",
                "ts_last_nsec": "hdr.bh1.ts_last_pkt.ts_nsec",
            },
        ),
    }
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/if_packet.h>"]
    lines.append("int main(void) {")
    expected: list[str] = []
    for struct_name, (dtype, rename) in checks.items():
        lines.append(f'printf("{struct_name} %zu\\n", sizeof(struct {struct_name}));')
        expected.append(f"{struct_name} {dtype.itemsize}")
        for field, (_, off) in dtype.fields.items():
            member = rename.get(field, field)
            lines.append(
                f'printf("{struct_name}.{field} %zu %zu\\n", offsetof(struct {struct_name}, '
                f"{member}), sizeof(((struct {struct_name} *)0)->{member}));"
            )
            expected.append(f"{struct_name}.{field} {off} {dtype.fields[field][0].itemsize}")
    for name, size in (
        ("tpacket_req", tp.TPACKET_REQ.size),
        ("tpacket_req3", tp.TPACKET_REQ3.size),
        ("sockaddr_ll", tp.SOCKADDR_LL.size),
        ("packet_mreq", tp.PACKET_MREQ.size),
        ("tpacket_stats_v3", 12),
    ):
        lines.append(f'printf("{name} %zu\\n", sizeof(struct {name}));')
        expected.append(f"{name} {size}")
    consts = {
        "SOL_PACKET": tp.SOL_PACKET,
        "PACKET_RX_RING": tp.PACKET_RX_RING,
        "PACKET_STATISTICS": tp.PACKET_STATISTICS,
        "PACKET_VERSION": tp.PACKET_VERSION,
        "PACKET_TX_RING": tp.PACKET_TX_RING,
        "PACKET_LOSS": tp.PACKET_LOSS,
        "PACKET_FANOUT": tp.PACKET_FANOUT,
        "PACKET_QDISC_BYPASS": tp.PACKET_QDISC_BYPASS,
        "PACKET_IGNORE_OUTGOING": tp.PACKET_IGNORE_OUTGOING,
        "TPACKET_V2": tp.TPACKET_V2,
        "TPACKET_V3": tp.TPACKET_V3,
        "TPACKET2_HDRLEN": tp.TPACKET2_HDRLEN,
        "TPACKET3_HDRLEN": tp.TPACKET3_HDRLEN,
        "PACKET_FANOUT_HASH": tp.PACKET_FANOUT_HASH,
        "PACKET_FANOUT_LB": tp.PACKET_FANOUT_LB,
        "PACKET_FANOUT_CPU": tp.PACKET_FANOUT_CPU,
        "PACKET_FANOUT_FLAG_UNIQUEID": tp.PACKET_FANOUT_FLAG_UNIQUEID,
        "TP_STATUS_SEND_REQUEST": tp.TP_STATUS_SEND_REQUEST,
        "TP_STATUS_WRONG_FORMAT": tp.TP_STATUS_WRONG_FORMAT,
    }
    lines.insert(3, "#ifndef SOL_PACKET\n#define SOL_PACKET 263\n#endif")
    for name, value in consts.items():
        lines.append(f'printf("{name} %ld\\n", (long)({name}));')
        expected.append(f"{name} {value}")
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, str(src), "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert out.split("\n")[:-1] == expected


def test_pool_layout() -> None:
    lens = np.array([60, 1514, 0, 100], np.int32)
    offs, total = pool_layout(lens, 64, 32)
    assert offs.dtype == np.int64
    assert offs.tolist() == [64, 64 + 60 + 96, 220 + 1514 + 96, 1830 + 0 + 96]
    assert total == int(lens.sum()) + 4 * 96
    offs, total = pool_layout(np.empty(0, np.int32))
    assert offs.size == 0 and total == 0


def test_fanout_group_id() -> None:
    assert fanout_group_id(5) == 5
    assert fanout_group_id(5, 1) == 0x1005
    ids = {fanout_group_id(i, k) for i in range(1, 4096) for k in range(16)}
    assert len(ids) == 4095 * 16 and max(ids) <= 0xFFFF
    with pytest.raises(ValueError):
        fanout_group_id(0)
    assert fanout_arg(7, tp.PACKET_FANOUT_LB, tp.PACKET_FANOUT_FLAG_ROLLOVER) == (
        7 | ((1 | 0x1000) << 16)
    )


def test_bad_ring_geometry_rejected() -> None:
    with pytest.raises(ValueError):
        RxRing("lo", version=4)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RxRing("lo", block_size=5000)
    with pytest.raises(ValueError):
        RxRing("lo", block_size=4096, frame_size=3072)


# --------------------------------------------------------------------------
# Receive
# --------------------------------------------------------------------------
@pytest.mark.netns
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize(("headroom", "tailroom"), [(64, 64), (0, 16)])
def test_rx_ring_receives_frames_intact(
    vethns: VethNs, version: int, headroom: int, tailroom: int
) -> None:
    frames = make_frames(500)
    with vethns.inside():
        rx = RxRing(
            vethns.b,
            version=version,  # type: ignore[arg-type]
            block_size=16384,
            block_count=128,
            timeout_ms=5,
            headroom=headroom,
            tailroom=tailroom,
        )
        tx = raw_sender(vethns.a)
    try:
        for f in frames:
            tx.send(f)
        got = collect(rx, len(frames), batch=64, check=check_layout(headroom, tailroom))
        assert len(got) == len(frames)
        assert got == frames  # byte for byte, in order
        assert settle(rx) == []
        st = rx.stats()
        assert st.tp_drops == 0 and st.oversize_drops == 0
        assert st.tp_packets >= len(frames)
    finally:
        rx.close()
        tx.close()


@pytest.mark.netns
@pytest.mark.parametrize("version", [2, 3])
def test_rx_ring_wraps_around(vethns: VethNs, version: int) -> None:
    """Several ring's worth of traffic through a small ring, drained between rounds."""
    with vethns.inside():
        # V2: 4 blocks x 8 slots = 32 slots. V3: 4 blocks of 16 KB.
        rx = RxRing(
            vethns.b,
            version=version,  # type: ignore[arg-type]
            block_size=16384,
            frame_size=2048,
            block_count=4,
            timeout_ms=2,
        )
        tx = raw_sender(vethns.a)
    try:
        frames = make_frames(200, min_len=60, max_len=400)
        got: list[bytes] = []
        for k in range(0, len(frames), 20):
            for f in frames[k : k + 20]:
                tx.send(f)
            got += collect(rx, 20, batch=7, timeout=3)
        assert got == frames
        assert rx.stats().tp_drops == 0
    finally:
        rx.close()
        tx.close()


@pytest.mark.netns
def test_rx_recv_batch_empty_and_wait_timeout(vethns: VethNs) -> None:
    with vethns.inside():
        rx = RxRing(vethns.b, version=3, block_size=8192, block_count=4)
    try:
        t0 = time.monotonic()
        assert rx.wait(0.1) is False
        assert time.monotonic() - t0 >= 0.05
        pool, offs, lens, ts = rx.recv_batch(32)
        assert pool.size == offs.size == lens.size == ts.size == 0
        assert rx.recv_batch(0)[1].size == 0
        assert isinstance(rx.fileno(), int) and rx.fileno() >= 0
    finally:
        rx.close()
    rx.close()  # idempotent


@pytest.mark.netns
@pytest.mark.parametrize("version", [2, 3])
def test_rx_oversize_frames_dropped_and_counted(vethns: VethNs, version: int) -> None:
    """A frame that does not fit a slot/block is counted and dropped, never delivered cut."""
    vethns.set_mtu(9000)
    # V2: a 2048-byte slot holds ~1980 bytes of frame. V3: one 4 KB block.
    block = 4096 if version == 3 else 8192
    big = ETH_HDR + bytes(range(256)) * 20  # 5134 bytes
    small = make_frames(3, max_len=1000)
    with vethns.inside():
        rx = RxRing(
            vethns.b,
            version=version,  # type: ignore[arg-type]
            block_size=block,
            frame_size=2048,
            block_count=8,
            timeout_ms=2,
        )
        tx = raw_sender(vethns.a)
    try:
        tx.send(small[0])
        tx.send(big)
        tx.send(small[1])
        tx.send(small[2])
        got = collect(rx, 3, batch=16)
        assert got == small
        assert settle(rx) == []
        assert rx.stats().oversize_drops == 1
    finally:
        rx.close()
        tx.close()


@pytest.mark.netns
@pytest.mark.parametrize("version", [2, 3])
def test_rx_packet_types_from_the_kernel(vethns: VethNs, version: int) -> None:
    """Each frame's sll_pkttype, as the kernel classified it by destination MAC; a frame we
    send shows as OUTGOING on a ring that does not ignore outgoing frames."""
    with vethns.ipr() as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=vethns.b)[0])[0]
        mac_b = bytes.fromhex(link.get_attr("IFLA_ADDRESS").replace(":", ""))
    dsts = {
        tp.PACKET_HOST: mac_b,
        tp.PACKET_BROADCAST: b"\xff" * 6,
        tp.PACKET_MULTICAST: bytes.fromhex("01005e000001"),
        tp.PACKET_OTHERHOST: bytes.fromhex("020000000099"),
    }
    body = ETH_HDR[6:] + bytes(50)
    frames = [dst + body for dst in dsts.values()]
    with vethns.inside():
        rx = RxRing(vethns.b, version=version, block_size=8192, block_count=4,  # type: ignore[arg-type]
                    timeout_ms=2)
        loud = RxRing(vethns.a, version=version, ignore_outgoing=False,  # type: ignore[arg-type]
                      block_size=8192, block_count=4, timeout_ms=2)
        tx = raw_sender(vethns.a)
    try:
        for f in frames:
            tx.send(f)
        got: list[tuple[bytes, int]] = []
        deadline = time.monotonic() + 5
        while len(got) < len(frames) and time.monotonic() < deadline:
            rx.wait(0.05)
            b = rx.recv(16)
            assert b.pkttypes.dtype == np.uint8 and b.pkttypes.shape == b.offsets.shape
            got += [(f, int(t)) for f, t in zip(batch_frames(*b[:3]), b.pkttypes.tolist(),
                                                 strict=True) if ours(f)]
        assert got == list(zip(frames, dsts, strict=True))
        out = []
        deadline = time.monotonic() + 5
        while len(out) < len(frames) and time.monotonic() < deadline:
            loud.wait(0.05)
            b = loud.recv(16)
            out += [int(t) for f, t in zip(batch_frames(*b[:3]), b.pkttypes.tolist(),
                                           strict=True) if ours(f)]
        assert out == [tp.PACKET_OUTGOING] * len(frames)
    finally:
        for r in (rx, loud):
            r.close()
        tx.close()


@pytest.mark.netns
@pytest.mark.parametrize("version", [2, 3])
def test_rx_ring_full_drops_known_without_asking(vethns: VethNs, version: int) -> None:
    """A burst into a small ring nobody reads: the kernel drops the excess. Reading on, a
    slot/block marked TP_STATUS_LOSING makes recv() fetch the statistics itself, so
    ring_full_drops is exact with no stats() call, and received + dropped = sent."""
    frames = make_frames(400, min_len=60, max_len=120)
    with vethns.inside():
        rx = RxRing(vethns.b, version=version, block_size=4096, frame_size=256,  # type: ignore[arg-type]
                    block_count=2, timeout_ms=2)
        tx = raw_sender(vethns.a)
    try:
        for f in frames[:300]:
            tx.send(f)
        time.sleep(0.05)  # let V3 retire its last block
        got = collect(rx, 300, batch=64, timeout=0.5)
        assert 0 < len(got) < 300
        for f in frames[300:]:  # later traffic carries the LOSING mark
            tx.send(f)
        got += collect(rx, len(frames), batch=64, timeout=1.0)
        assert rx.ring_full_drops == len(frames) - len(got) > 0
        st = rx.stats()
        assert st.tp_drops == rx.ring_full_drops and st.oversize_drops == 0
        assert got == [f for f in frames if f in set(got)]  # in order, none twice
    finally:
        rx.close()
        tx.close()


# --------------------------------------------------------------------------
# Transmit
# --------------------------------------------------------------------------
@pytest.mark.netns
@pytest.mark.parametrize("mode", ["ring", "sendmmsg", "send"])
def test_tx_batch_received_intact(vethns: VethNs, mode: str) -> None:
    frames = make_frames(300)
    pool, offs, lens = frames_to_batch(frames, headroom=64, tailroom=64)
    with vethns.inside():
        sniff = raw_receiver(vethns.b)
        tx = TxRing(vethns.a, mode=mode, frame_count=128)  # type: ignore[arg-type]
    try:
        assert tx.send_batch(pool, offs, lens) == len(frames)  # > ring size: refills
        assert drain_socket(sniff, len(frames)) == frames
        st = tx.stats()
        assert st.sent == len(frames) and st.busy_drops == 0 and st.oversize_drops == 0
        # A batch straight from an RxRing-style pool with int32 lengths works too.
        lens32 = lens.astype(np.int32)
        assert tx.send_batch(pool, offs, lens32) == len(frames)
        assert drain_socket(sniff, len(frames)) == frames
        assert tx.send_batch(pool, offs[:0], lens[:0]) == 0
    finally:
        tx.close()
        sniff.close()


@pytest.mark.netns
@pytest.mark.parametrize("mode", ["ring", "sendmmsg", "send"])
def test_tx_oversize_dropped_never_truncated(vethns: VethNs, mode: str) -> None:
    ok = make_frames(3, max_len=400)
    frames = [ok[0], ETH_HDR + bytes(1501), ok[1], b"\x01" * 10, ok[2]]  # 1515 > 1500 + 14
    pool, offs, lens = frames_to_batch(frames)
    with vethns.inside():
        sniff = raw_receiver(vethns.b)
        tx = TxRing(vethns.a, mode=mode)  # type: ignore[arg-type]
    try:
        assert tx.max_frame_len == 1514
        assert tx.send_batch(pool, offs, lens) == 3
        assert drain_socket(sniff, 3) == ok
        assert drain_socket(sniff, 1, timeout=0.3) == []
        st = tx.stats()
        assert (st.sent, st.oversize_drops, st.invalid_drops) == (3, 1, 1)
        with pytest.raises(ValueError):
            tx.send_batch(pool, offs + pool.size, lens)
    finally:
        tx.close()
        sniff.close()


@pytest.mark.netns
def test_tx_ring_frame_size_limits_frames(vethns: VethNs) -> None:
    """With the ring, the slot size bounds frames even below the MTU."""
    ok = make_frames(2, max_len=400)
    frames = [ok[0], ETH_HDR + bytes(600), ok[1]]
    with vethns.inside():
        sniff = raw_receiver(vethns.b)
        tx = TxRing(vethns.a, mode="ring", frame_size=512, block_size=4096, frame_count=16)
    try:
        assert tx.max_frame_len == 512 - 32
        assert tx.send_batch(*frames_to_batch(frames)) == 2
        assert drain_socket(sniff, 2) == ok
        assert tx.stats().oversize_drops == 1
    finally:
        tx.close()
        sniff.close()


@pytest.mark.netns
@pytest.mark.parametrize("mode", ["ring", "sendmmsg", "send"])
def test_tx_enobufs_counted_as_drops(vethns: VethNs, mode: str) -> None:
    """A qdisc that refuses every frame (pfifo limit 0) -> ENOBUFS -> busy drops.

    For the TX ring this also checks that refused frames are skipped and the
    ring stays usable (kernel ring head and ours in step) once the qdisc goes.
    """
    frames = make_frames(40, max_len=200)
    pool, offs, lens = frames_to_batch(frames)
    with vethns.ipr() as ipr:
        idx = ipr.link_lookup(ifname=vethns.a)[0]
        ipr.tc("add", "pfifo", index=idx, handle="1:", limit=0)
    with vethns.inside():
        sniff = raw_receiver(vethns.b)
        tx = TxRing(vethns.a, mode=mode, frame_count=32)  # type: ignore[arg-type]
    try:
        assert tx.send_batch(pool, offs, lens) == 0
        assert tx.stats().busy_drops == len(frames)
        with vethns.ipr() as ipr:
            ipr.tc("del", index=idx, handle="1:", root=True)
        assert tx.send_batch(pool, offs, lens) == len(frames)
        assert drain_socket(sniff, len(frames)) == frames
        assert tx.stats().sent == len(frames)
    finally:
        tx.close()
        sniff.close()


@pytest.mark.netns
@pytest.mark.parametrize("mode", ["ring", "sendmmsg", "send"])
def test_tx_device_down_counted_as_drops(vethns: VethNs, mode: str) -> None:
    """Sending on an interface that is down (ENETDOWN) drops and counts every frame, and
    the transmitter works again once the interface is up (the TX ring is still in step)."""
    frames = make_frames(20, max_len=200)
    pool, offs, lens = frames_to_batch(frames)
    with vethns.inside():
        sniff = raw_receiver(vethns.b)
        tx = TxRing(vethns.a, mode=mode, frame_count=16)  # type: ignore[arg-type]
    with vethns.ipr() as ipr:
        idx = ipr.link_lookup(ifname=vethns.a)[0]
        ipr.link("set", index=idx, state="down")
    try:
        assert tx.send_batch(pool, offs, lens) == 0
        st = tx.stats()
        assert (st.sent, st.down_drops, st.busy_drops) == (0, len(frames), 0)
        with vethns.ipr() as ipr:
            ipr.link("set", index=idx, state="up")
            for _ in range(100):  # the carrier comes back a moment after the link
                if ipr.get_links(idx)[0].get_attr("IFLA_CARRIER") == 1:
                    break
                time.sleep(0.02)
        assert tx.send_batch(pool, offs, lens) == len(frames)
        assert drain_socket(sniff, len(frames)) == frames
    finally:
        tx.close()
        sniff.close()


@pytest.mark.netns
@pytest.mark.parametrize("mode", ["sendmmsg", "send"])
def test_tx_mtu_shrunk_after_open_counted_as_oversize(vethns: VethNs, mode: str) -> None:
    """The kernel refuses (EMSGSIZE) a frame that fit the MTU read at open but not the
    current one: counted as too long, the others sent, and later batches cut earlier."""
    ok = make_frames(2, max_len=300)
    frames = [ok[0], ETH_HDR + bytes(1000), ok[1]]
    with vethns.inside():
        sniff = raw_receiver(vethns.b)
        tx = TxRing(vethns.a, mode=mode)  # type: ignore[arg-type]
    vethns.set_mtu(576)
    try:
        assert tx.max_frame_len == 1514
        assert tx.send_batch(*frames_to_batch(frames)) == 2
        assert drain_socket(sniff, 2) == ok
        st = tx.stats()
        assert (st.sent, st.oversize_drops) == (2, 1)
        assert tx.max_frame_len == 576 + 14
    finally:
        tx.close()
        sniff.close()


# --------------------------------------------------------------------------
# Fanout and ignore_outgoing
# --------------------------------------------------------------------------
def _udp_frames(flows: int, per_flow: int) -> tuple[list[bytes], dict[int, int]]:
    """UDP/IPv4 frames; payload = sequence number. Returns frames and seq -> flow."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    frames = []
    flow_of: dict[int, int] = {}
    seq = 0
    for _ in range(per_flow):
        for f in range(flows):
            pkt = (
                Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                / IP(src=f"10.1.{f // 200}.{f % 200 + 1}", dst="10.2.0.1")
                / UDP(sport=10000 + f, dport=5000)
                / seq.to_bytes(4, "big")
            )
            frames.append(bytes(pkt))
            flow_of[seq] = f
            seq += 1
    return frames, flow_of


def _seq(frame: bytes) -> int:
    return int.from_bytes(frame[42:46], "big")


def _collect_udp(rings: list[RxRing], want: int, timeout: float = 5.0) -> list[list[int]]:
    per: list[list[int]] = [[] for _ in rings]
    deadline = time.monotonic() + timeout
    while sum(map(len, per)) < want and time.monotonic() < deadline:
        for i, r in enumerate(rings):
            for f in batch_frames(*r.recv_batch(256)[:3]):
                if f[12:14] == b"\x08\x00" and f[23] == 17:
                    per[i].append(_seq(f))
        time.sleep(0.002)
    return per


@pytest.mark.netns
@pytest.mark.parametrize("version", [2, 3])
def test_fanout_hash_each_packet_once_flows_stick(vethns: VethNs, version: int) -> None:
    flows, per_flow = 32, 8
    frames, flow_of = _udp_frames(flows, per_flow)
    with vethns.inside():
        queues = open_queues(vethns.b, 2, version=version, block_size=65536, timeout_ms=2)
        tx = raw_sender(vethns.a)
    try:
        assert queues[0].fanout_group == queues[1].fanout_group is not None
        for f in frames:
            tx.send(f)
        per = _collect_udp(queues, len(frames))
        seen = per[0] + per[1]
        assert sorted(seen) == list(range(len(frames)))  # each exactly once
        assert not set(per[0]) & set(per[1])
        member_of_flow: dict[int, set[int]] = {}
        for m, seqs in enumerate(per):
            for s in seqs:
                member_of_flow.setdefault(flow_of[s], set()).add(m)
        assert all(len(ms) == 1 for ms in member_of_flow.values())  # flows stick
        assert per[0] and per[1]  # 32 flows: both members used (p(fail) = 2**-31)
        # Flow order is kept within a member.
        for seqs in per:
            for fl in range(flows):
                mine = [s for s in seqs if flow_of[s] == fl]
                assert mine == sorted(mine)
    finally:
        for q in queues:
            q.close()
        tx.close()


@pytest.mark.netns
def test_fanout_lb_explicit_group(vethns: VethNs) -> None:
    """PACKET_FANOUT_LB with a derived group id: strict round robin across members."""
    frames, _ = _udp_frames(1, 40)
    with vethns.inside():
        gid = fanout_group_id(socket.if_nametoindex(vethns.b), instance=3)
        rings = [
            RxRing(vethns.b, version=2, fanout_group=gid, fanout_mode="lb", block_size=16384)
            for _ in range(2)
        ]
        tx = raw_sender(vethns.a)
    try:
        assert [r.fanout_group for r in rings] == [gid, gid]
        for f in frames:
            tx.send(f)
        per = _collect_udp(rings, len(frames))
        assert sorted(per[0] + per[1]) == list(range(len(frames)))
        assert len(per[0]) == len(per[1]) == len(frames) // 2
    finally:
        for r in rings:
            r.close()
        tx.close()


@pytest.mark.netns
def test_fanout_mode_mismatch_rejected(vethns: VethNs) -> None:
    with vethns.inside():
        first = RxRing(vethns.b, version=2, fanout_group=77, fanout_mode="hash")
        try:
            with pytest.raises(OSError):
                RxRing(vethns.b, version=2, fanout_group=77, fanout_mode="lb")
        finally:
            first.close()


@pytest.mark.netns
@pytest.mark.parametrize("mode", ["ring", "sendmmsg"])
def test_ignore_outgoing(vethns: VethNs, mode: str) -> None:
    """Frames we send on an interface do not come back to an RX ring on it."""
    frames = make_frames(50, max_len=300)
    with vethns.inside():
        quiet = RxRing(vethns.a, version=2, ignore_outgoing=True, block_size=16384)
        loud = RxRing(vethns.a, version=2, ignore_outgoing=False, block_size=16384)
        peer = RxRing(vethns.b, version=2, block_size=16384)
        tx = TxRing(vethns.a, mode=mode)  # type: ignore[arg-type]
    try:
        assert tx.send_batch(*frames_to_batch(frames)) == len(frames)
        assert collect(peer, len(frames)) == frames
        assert collect(loud, len(frames)) == frames  # they are seen without the option
        assert settle(quiet) == []
    finally:
        for r in (quiet, loud, peer):
            r.close()
        tx.close()


@pytest.mark.netns
def test_promisc_membership(vethns: VethNs) -> None:
    from pyroute2 import NetNS

    with vethns.inside():
        rx = RxRing(vethns.b, version=2, promisc=True, block_size=8192)
    try:
        with NetNS(vethns.name, flags=0) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname=vethns.b)[0])[0]
            # The membership raises the promiscuity counter (not the IFF_PROMISC flag).
            assert link.get_attr("IFLA_PROMISCUITY") == 1
    finally:
        rx.close()
    with NetNS(vethns.name, flags=0) as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=vethns.b)[0])[0]
        assert link.get_attr("IFLA_PROMISCUITY") == 0  # dropped with the socket
