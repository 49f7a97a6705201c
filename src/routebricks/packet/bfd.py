"""BFD control packets (RFC 5880 §4.1) and their single-hop IPv4 framing (RFC 5881).

The mandatory section is 24 bytes::

    0: Vers(3) Diag(5)   1: Sta(2) P F C A D M   2: Detect Mult   3: Length
    4: My Discriminator  8: Your Discriminator  12: Desired Min TX Interval (us)
    16: Required Min RX Interval (us)  20: Required Min Echo RX Interval (us)

:func:`decode` applies the reception checks of RFC 5880 §6.8.6 that depend on the packet
alone (version, length, detect multiplier, multipoint bit, discriminators); the checks that
need the session (which discriminator is ours, authentication in use) are the session's
(:mod:`routebricks.packet.bfdsession`). :func:`build_frame` and :func:`parse_frame` wrap a
control packet in Ethernet/IPv4/UDP as RFC 5881 says: destination port 3784, a source port
in 49152-65535, TTL 255 on send and required on receive (the GTSM check of §5).

A bad packet raises :class:`BadPacket`, whose ``reason`` is the drop reason an element counts.
Everything here is the control plane (a few packets per second per session): plain Python.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from routebricks.packet.checksum import inet_checksum

__all__ = [
    "BFD_PORT", "BadPacket", "ControlPacket", "Diag", "HEADER_LEN", "MAX_SPORT", "MIN_SPORT",
    "State", "build_frame", "decode", "parse_frame",
]

VERSION = 1
HEADER_LEN = 24  # the mandatory section
AUTH_MIN_LEN = 26  # with the A bit: the mandatory section and an auth type and length
BFD_PORT = 3784  # RFC 5881 §4: single-hop control packets
MIN_SPORT, MAX_SPORT = 49152, 65535  # RFC 5881 §4: the source port range
GTSM_TTL = 255  # RFC 5881 §5
IP_TOS_CS6 = 0xC0  # network control, as other implementations send BFD

ETH_HLEN, IP_HLEN, UDP_HLEN = 14, 20, 8
FRAME_LEN = ETH_HLEN + IP_HLEN + UDP_HLEN + HEADER_LEN  # what build_frame makes: 66 bytes

_HEADER = struct.Struct("!BBBBIIIII")


class State(IntEnum):
    """Session states (RFC 5880 §4.1, the Sta field)."""

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    @property
    def label(self) -> str:
        """As the handlers and messages print it: AdminDown, Down, Init, Up."""
        return {0: "AdminDown", 1: "Down", 2: "Init", 3: "Up"}[int(self)]


class Diag(IntEnum):
    """Diagnostic codes (RFC 5880 §4.1)."""

    NONE = 0
    CONTROL_DETECTION_TIME_EXPIRED = 1
    ECHO_FUNCTION_FAILED = 2
    NEIGHBOR_SIGNALED_SESSION_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMINISTRATIVELY_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8

    @property
    def text(self) -> str:
        """The RFC's words, lower case: 'control detection time expired'."""
        if self is Diag.NONE:
            return "no diagnostic"
        return self.name.lower().replace("_", " ")


def diag_text(code: int) -> str:
    """A diagnostic code's words; codes the RFC leaves unassigned as 'diagnostic N'."""
    try:
        return Diag(code).text
    except ValueError:
        return f"diagnostic {code}"


class BadPacket(ValueError):  # noqa: N818 - a reason to drop, not a program error
    """A packet that fails a reception check; ``reason`` names the drop."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ControlPacket:
    """One BFD control packet; intervals in microseconds, as on the wire."""

    state: State = State.DOWN
    diag: int = 0
    my_discr: int = 0
    your_discr: int = 0
    detect_mult: int = 3
    desired_min_tx: int = 1_000_000
    required_min_rx: int = 1_000_000
    required_min_echo_rx: int = 0
    poll: bool = False
    final: bool = False
    cpi: bool = False  # control plane independent
    auth: bool = False
    demand: bool = False
    multipoint: bool = False
    version: int = VERSION
    length: int = HEADER_LEN

    def encode(self) -> bytes:
        """The 24 bytes on the wire (raises ValueError for a field out of its range)."""
        for name, value, bits in (("version", self.version, 3), ("diag", self.diag, 5),
                                  ("detect_mult", self.detect_mult, 8),
                                  ("length", self.length, 8), ("my_discr", self.my_discr, 32),
                                  ("your_discr", self.your_discr, 32),
                                  ("desired_min_tx", self.desired_min_tx, 32),
                                  ("required_min_rx", self.required_min_rx, 32),
                                  ("required_min_echo_rx", self.required_min_echo_rx, 32)):
            if not 0 <= value < (1 << bits):
                raise ValueError(f"{name} {value} does not fit in {bits} bits")
        flags = ((int(self.state) << 6) | (self.poll << 5) | (self.final << 4)
                 | (self.cpi << 3) | (self.auth << 2) | (self.demand << 1) | int(self.multipoint))
        return _HEADER.pack((self.version << 5) | self.diag, flags, self.detect_mult,
                            self.length, self.my_discr, self.your_discr, self.desired_min_tx,
                            self.required_min_rx, self.required_min_echo_rx)


def decode(data: bytes) -> ControlPacket:
    """The control packet in ``data`` (a UDP payload), checked as RFC 5880 §6.8.6 says
    before any session is looked at; raises :class:`BadPacket` naming the failed check."""
    if len(data) < HEADER_LEN:
        raise BadPacket("bad length", f"{len(data)} bytes, less than {HEADER_LEN}")
    (vd, flags, mult, length, my, your, tx, rx, echo) = _HEADER.unpack_from(data)
    version = vd >> 5
    if version != VERSION:
        raise BadPacket("bad version", f"version {version}")
    auth = bool(flags & 0x04)
    if length < (AUTH_MIN_LEN if auth else HEADER_LEN):
        raise BadPacket("bad length", f"Length field {length}")
    if length > len(data):
        raise BadPacket("bad length", f"Length field {length} beyond the {len(data)}-byte "
                        "payload")
    if mult == 0:
        raise BadPacket("bad detect mult", "Detect Mult is zero")
    if flags & 0x01:
        raise BadPacket("multipoint", "the M bit is set")
    if my == 0:
        raise BadPacket("zero my discriminator")
    state = State(flags >> 6)
    if your == 0 and state not in (State.DOWN, State.ADMIN_DOWN):
        raise BadPacket("zero your discriminator", f"in state {state.label}")
    return ControlPacket(state=state, diag=vd & 0x1F, my_discr=my, your_discr=your,
                         detect_mult=mult, desired_min_tx=tx, required_min_rx=rx,
                         required_min_echo_rx=echo, poll=bool(flags & 0x20),
                         final=bool(flags & 0x10), cpi=bool(flags & 0x08), auth=auth,
                         demand=bool(flags & 0x02), multipoint=False, version=version,
                         length=length)


# ---------------------------------------------------------------------- RFC 5881 framing
def _udp_checksum(src: bytes, dst: bytes, udp: bytes) -> int:
    pseudo = src + dst + struct.pack("!BBH", 0, 17, len(udp))
    return inet_checksum(pseudo + udp)


def build_frame(src_mac: bytes, dst_mac: bytes, src_ip: int, dst_ip: int, sport: int,
                payload: bytes, ip_id: int = 0) -> bytes:
    """An Ethernet frame carrying ``payload`` (a control packet) in UDP to port 3784 from
    ``sport``, IPv4 TTL 255, both checksums set."""
    src, dst = src_ip.to_bytes(4, "big"), dst_ip.to_bytes(4, "big")
    udp_len = UDP_HLEN + len(payload)
    udp = struct.pack("!HHHH", sport, BFD_PORT, udp_len, 0) + payload
    csum = _udp_checksum(src, dst, udp) or 0xFFFF  # 0 means "no checksum" in UDP
    udp = udp[:6] + csum.to_bytes(2, "big") + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, IP_TOS_CS6, IP_HLEN + udp_len, ip_id & 0xFFFF,
                     0, GTSM_TTL, 17, 0, src, dst)
    ip = ip[:10] + inet_checksum(ip).to_bytes(2, "big") + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + udp


def parse_frame(frame: bytes, local_ip: int, peer_ip: int) -> tuple[ControlPacket, int]:
    """The control packet of an Ethernet frame sent by ``peer_ip`` to ``local_ip``, and the
    frame's UDP source port; raises :class:`BadPacket` for anything else.

    The frame must be IPv4 (no fragment), UDP to port 3784 (otherwise "not BFD"), with a
    correct IP header ("bad IP header"), the session's addresses ("wrong address"), TTL 255
    ("bad TTL": RFC 5881 §5), and a correct UDP length and checksum ("bad UDP header")."""
    if len(frame) < ETH_HLEN + IP_HLEN or frame[12:14] != b"\x08\x00":
        raise BadPacket("not BFD", "not IPv4")
    ip = frame[ETH_HLEN:]
    ihl = (ip[0] & 0x0F) * 4
    total = int.from_bytes(ip[2:4], "big")
    if ip[0] >> 4 != 4 or ihl < IP_HLEN or total < ihl or total > len(ip):
        raise BadPacket("bad IP header", "version, header length or total length")
    if ip[9] != 17 or total < ihl + UDP_HLEN:
        raise BadPacket("not BFD", "not UDP")
    if int.from_bytes(ip[6:8], "big") & 0x3FFF:
        raise BadPacket("not BFD", "an IP fragment")
    udp = ip[ihl:total]
    if int.from_bytes(udp[2:4], "big") != BFD_PORT:
        raise BadPacket("not BFD", "UDP destination port is not 3784")
    if inet_checksum(ip[:ihl]) != 0:
        raise BadPacket("bad IP header", "header checksum")
    src, dst = int.from_bytes(ip[12:16], "big"), int.from_bytes(ip[16:20], "big")
    if src != peer_ip or dst != local_ip:
        raise BadPacket("wrong address", "not from the peer to the local address")
    if ip[8] != GTSM_TTL:
        raise BadPacket("bad TTL", f"TTL {ip[8]}, not 255")
    udp_len = int.from_bytes(udp[4:6], "big")
    if udp_len < UDP_HLEN or udp_len > len(udp):
        raise BadPacket("bad UDP header", f"UDP length {udp_len}")
    udp = udp[:udp_len]
    if udp[6:8] != b"\0\0" and _udp_checksum(ip[12:16], ip[16:20], udp) != 0:
        raise BadPacket("bad UDP header", "UDP checksum")
    return decode(udp[UDP_HLEN:]), int.from_bytes(udp[0:2], "big")
