"""BFD: one Bidirectional Forwarding Detection session over an internal link of the cluster."""

from __future__ import annotations

import ipaddress
import math
import random
import secrets
import sys
from typing import ClassVar

import numpy as np

from routebricks.elements.standard.timedsource import unparse_interval
from routebricks.engine import clock
from routebricks.engine.args import (
    Arg,
    Bool,
    EtherAddress,
    IntRange,
    IPAddress,
    Seconds,
    String,
    UInt,
)
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.errors import RouteBricksError
from routebricks.packet import bfd as proto
from routebricks.packet.batch import PacketBatch
from routebricks.packet.bfd import BadPacket, State, diag_text
from routebricks.packet.bfdsession import Actions, Session, Transition

# Where the fields a cheap first pass looks at sit in an Ethernet/IPv4/UDP frame.
_ETHERTYPE, _IP_VHL, _IP_PROTO = 12, 14, 23
_MIN_UDP_FRAME = proto.ETH_HLEN + proto.IP_HLEN + proto.UDP_HLEN
#: The shortest INTERVAL: the router's timers are not kept to a finer grain.
MIN_INTERVAL = 0.001


class BFD(Element):
    """Runs one BFD session (RFC 5880 asynchronous mode, RFC 5881 single-hop IPv4) with PEER.

    Ports: 1 push input (frames for this interface), 1 push output (the control packets sent).
    Arguments:
        LOCAL (IPv4 address, required): our address in the session (no kernel address is
            needed: routebricks builds and reads the packets itself).
        PEER (IPv4 address, required): the peer's address.
        SRC_MAC (Ethernet address, required): source of the frames sent (this interface).
        DST_MAC (Ethernet address, required): destination of the frames sent (the peer
            interface's own MAC).
        INTERVAL (time, default 100ms, at least 1ms): our Desired Min TX and Required Min
            RX while the session is Up.
        MULTIPLIER (1 to 255, default 3): our Detect Mult: the peer declares the session
            down after MULTIPLIER intervals without a packet from us.
        DISCRIMINATOR (1 to 2^32-1, default random): our My Discriminator; unique among
            the router's BFD sessions.
        NOTIFY (string, default none): write handlers ("vlb.peer sw.peer") told
            "PEER_ID up" when the session comes Up and "PEER_ID down" when it leaves Up.
        PEER_ID (unsigned, required with NOTIFY): the peer's number in those messages.
        NOTIFY_START (bool, default false): also write "PEER_ID down" when the session
            starts (it starts Down), so users that assume the peer usable learn otherwise
            even if the session never comes Up (a dead peer, a restarted worker).
        SPORT (49152 to 65535, default derived from the discriminator): the UDP source port.
    Behaviour: the session starts Down when the router runs and sends a control packet at
        once, then periodically: at one per second (RFC 5880 §6.8.3's slow rate) while not
        Up, at the negotiated interval (the larger of INTERVAL and the peer's Required Min
        RX) while Up, each period reduced by a random 0-25% (§6.8.7). The three-way
        handshake Down -> Init -> Up follows §6.8.6, and every state change sends a packet
        at once, so a session comes Up a few packet times after the peer answers. Going Up
        lowers our Desired Min TX under a Poll Sequence; a packet with the Poll bit is
        answered at once with the Final bit. The session goes Down when no packet arrives
        for the detection time (the peer's Detect Mult times the larger of INTERVAL and
        its Desired Min TX; diagnostic 1, control detection time expired) or when the peer
        says Down or AdminDown (diagnostic 3, neighbor signaled session down).
        Packets sent are complete Ethernet/IPv4/UDP frames to port 3784, IPv4 TTL 255
        (RFC 5881 GTSM), DSCP CS6, both checksums set. Received frames pass a vectorized
        first pass (IPv4, UDP, destination port 3784; everything else is dropped as "not
        BFD"), then the few BFD frames are checked one by one: IP header and checksum,
        addresses (from PEER to LOCAL), TTL 255, UDP length and checksum, and the control
        packet rules of §6.8.6 (version, length, detect mult, multipoint bit,
        discriminators, no authentication). Each failure is a named drop (see Handlers).
        Each transition to or from Up writes to every NOTIFY handler (in this process
        and, under the supervisor, in the other workers and the control copy too) and
        prints one line on stderr, e.g. "bfd2 :: BFD: session to 169.254.1.2 down
        (control detection time expired)". The state machine lives in one process
        (SINGLE_PROCESS: a router with a BFD element runs one worker), since the peer's
        packets and the timers must meet in one place. Not implemented: authentication,
        Demand mode of our own (a peer's Demand mode is honoured) and the Echo function.
    Handlers:
        state (read): the session state: Up, Down, Init or AdminDown.
        session (read): one "name value" line each: states, discriminators, intervals
            (ours, the peer's, the negotiated transmit interval, the detection time),
            diagnostics, whether a Poll Sequence runs.
        sent (read), received (read): control packets sent, and received and accepted.
        admin (read/write): "up", or "down" to hold the session AdminDown (§6.8.16,
            diagnostic 7); "up" enables it again (Down, then the handshake).
        interval (read/write): INTERVAL; a change while Up runs a Poll Sequence.
        drops (read): drops by reason: "not BFD", "bad IP header", "wrong address", "bad
            TTL", "bad UDP header", "bad version", "bad length", "bad detect mult",
            "multipoint", "zero my discriminator", "zero your discriminator", "unknown
            discriminator", "authentication", "admin down" (discarded while AdminDown).
    Example:
        FromDevice(to_s2, PROMISC true) -> c :: Classifier(0/fe0000000001, -);
        c[0] -> bfd2 :: BFD(LOCAL 169.254.1.1, PEER 169.254.1.2, SRC_MAC fe:00:00:00:00:01,
                            DST_MAC fe:00:00:01:00:01, INTERVAL 100ms, MULTIPLIER 3,
                            NOTIFY "vlb.peer sw.peer", PEER_ID 1)
             -> ToDevice(to_s2);
    See also: Classifier, FromDevice, ToDevice
    """

    TASK_WAITS_FOR_EVENTS = True  # the task only starts the session

    port_count = "1/1"
    processing = "h/h"
    SINGLE_PROCESS = True  # one state machine per session: packets and timers meet here
    ARGS = (
        Arg("LOCAL", IPAddress, required=True),
        Arg("PEER", IPAddress, required=True),
        Arg("SRC_MAC", EtherAddress, required=True),
        Arg("DST_MAC", EtherAddress, required=True),
        Arg("INTERVAL", Seconds, 0.1),
        Arg("MULTIPLIER", IntRange(1, 255), 3),
        Arg("DISCRIMINATOR", IntRange(1, (1 << 32) - 1), None),
        Arg("NOTIFY", String, ""),
        Arg("PEER_ID", UInt, None),
        Arg("NOTIFY_START", Bool, False),
        Arg("SPORT", IntRange(proto.MIN_SPORT, proto.MAX_SPORT), None),
    )
    #: Every reason this element drops a packet for, and what it means.
    DROPS: ClassVar[dict[str, str]] = {
        "not BFD": "not IPv4/UDP to port 3784 (or an IP fragment)",
        "bad IP header": "IP version, header length, total length or checksum wrong",
        "wrong address": "not from PEER to LOCAL",
        "bad TTL": "TTL not 255 (RFC 5881 §5)",
        "bad UDP header": "UDP length or checksum wrong",
        "bad version": "BFD version not 1",
        "bad length": "BFD Length field too small or beyond the UDP payload",
        "bad detect mult": "Detect Mult zero",
        "multipoint": "M bit set",
        "zero my discriminator": "My Discriminator zero",
        "zero your discriminator": "Your Discriminator zero in state Init or Up",
        "unknown discriminator": "Your Discriminator not ours",
        "authentication": "A bit set: authentication is not in use",
        "admin down": "received while the session is AdminDown (RFC 5880 §6.8.6)",
    }

    def configure(self) -> None:
        if self.local == self.peer:
            raise self.error("LOCAL and PEER are the same address",
                             "LOCAL is this end's address, PEER the other end's")
        if not MIN_INTERVAL <= self.interval < 4294:
            raise self.error(f"INTERVAL must be from 1ms to 4294s, not "
                             f"{unparse_interval(self.interval)}", "e.g. INTERVAL 100ms")
        self._discr = self._choose_discriminator()
        if self.sport is None:
            self.sport = proto.MIN_SPORT + self._discr % (proto.MAX_SPORT - proto.MIN_SPORT + 1)
        self._notify = self._check_notify()
        self.session = Session(self._discr, detect_mult=self.multiplier,
                               desired_min_tx=self._interval_us(),
                               required_min_rx=self._interval_us(), rng=random.Random())
        self._started = False
        self._timer_at = math.inf  # the earliest timer we have pending with the router
        self._ip_id = 0
        self.sent = 0

    def _interval_us(self) -> int:
        return max(1, round(self.interval * 1e6))

    def _choose_discriminator(self) -> int:
        taken = {e._discr for e in (self.router.elements.values() if self.router else ())
                 if isinstance(e, BFD) and e is not self and hasattr(e, "_discr")}
        if self.discriminator is not None:
            if self.discriminator in taken:
                raise self.error(f"DISCRIMINATOR {self.discriminator} is used by another "
                                 "BFD session", "give each session its own, or leave it out")
            return int(self.discriminator)
        while True:  # RFC 5880 §6.8.1: random, nonzero, unique
            d = secrets.randbits(32)
            if d and d not in taken:
                return d

    def _check_notify(self) -> list[str]:
        specs = self.notify.split()
        if specs and self.peer_id is None:
            raise self.error("PEER_ID is required with NOTIFY",
                             "PEER_ID is the number written before 'up'/'down', e.g. PEER_ID 1")
        for spec in specs:
            ename, dot, hname = spec.rpartition(".")
            if not dot or not ename or not hname:
                raise self.error(f"NOTIFY: {spec!r} is not ELEMENT.HANDLER",
                                 'e.g. NOTIFY "vlb.peer sw.peer"')
            target = self.router.elements.get(ename) if self.router else None
            if target is None:
                raise self.error(f"NOTIFY: no element named {ename!r}",
                                 "NOTIFY names write handlers of this router's elements")
            h = target.HANDLERS.get(hname)
            if h is None or h.write is None:
                writable = sorted(n for n, x in target.HANDLERS.items() if x.write)
                raise self.error(f"NOTIFY: {ename} ({type(target).__name__}) has no write "
                                 f"handler {hname!r}",
                                 f"its write handlers: {', '.join(writable) or 'none'}")
        return specs

    # ------------------------------------------------------------------ packets in
    def push(self, port: int, batch: PacketBatch) -> None:
        n = len(batch)
        if not n:
            return
        # A vectorized first pass keeps data frames out of the per-packet checks below:
        # IPv4, UDP, destination port 3784 (found through each packet's header length).
        length = batch.length
        ihl = (batch.u8(_IP_VHL) & 0x0F).astype(np.int64) * 4
        cand = ((length >= _MIN_UDP_FRAME) & (batch.u16(_ETHERTYPE) == 0x0800)
                & (batch.u8(_IP_PROTO) == 17) & (ihl >= proto.IP_HLEN)
                & (length >= proto.ETH_HLEN + ihl + proto.UDP_HLEN))
        dport_at = np.where(cand, batch.off + proto.ETH_HLEN + ihl + 2, batch.off)
        cand &= batch.u16_at(dport_at) == proto.BFD_PORT
        idx = np.flatnonzero(cand)
        self.drop(n - len(idx), "not BFD")
        if not len(idx):
            return
        now = clock.monotonic()
        for i in idx.tolist():  # BFD frames only: a few per second per session
            try:
                pkt, _sport = proto.parse_frame(batch.packet(i), self.local, self.peer)
            except BadPacket as e:
                self.drop(1, e.reason)
                continue
            self._apply(self.session.receive(pkt, now))
        self._arm()

    # ------------------------------------------------------------------ timers
    def run_task(self) -> bool:
        # Started from the task (as TimedSource) so that the session runs where the router
        # runs: in the worker, not in the configuring process.
        if not self._started and self.router is not None:
            self._started = True
            if self.notify_start:
                self._notify_all("down")
            self._apply(self.session.start(clock.monotonic()))
            self._arm()
        return False

    def _arm(self) -> None:
        """Have the router call us at the session's next deadline (one timer pending)."""
        if self.router is None:
            return
        due = self.session.next_deadline()
        if due < self._timer_at:
            self._timer_at = due
            self.router.schedule(max(0.0, due - clock.monotonic()), lambda: self._fire(due))

    def _fire(self, due: float) -> None:
        if due == self._timer_at:
            self._timer_at = math.inf
        self._apply(self.session.tick(clock.monotonic()))
        self._arm()

    # ------------------------------------------------------------------ what the session says
    def _apply(self, acts: Actions) -> None:
        for change in acts.changes:
            if change.up_changed:
                self._announce(change)
        if acts.drop:
            self.drop(1, acts.drop)
        if acts.send:
            frames = []
            for pkt in acts.send:
                frames.append(proto.build_frame(self.src_mac, self.dst_mac, self.local,
                                                self.peer, self.sport, pkt.encode(),
                                                self._ip_id))
                self._ip_id = (self._ip_id + 1) & 0xFFFF
            self.sent += len(frames)
            self.emit(0, PacketBatch.from_bytes(frames))

    def _announce(self, change: Transition) -> None:
        word = "up" if change.new is State.UP else "down"
        why = "" if change.new is State.UP else f" ({diag_text(change.diag)})"
        print(f"{self.name} :: BFD: session to {ipaddress.IPv4Address(self.peer)} {word}{why}",
              file=sys.stderr, flush=True)
        self._notify_all(word)

    def _notify_all(self, word: str) -> None:
        """Write "PEER_ID up" or "PEER_ID down" to every NOTIFY handler."""
        value = f"{self.peer_id} {word}"
        assert self.router is not None
        for spec in self._notify:
            try:
                self.router.write_handler(spec, value)
            except RouteBricksError as e:  # the session goes on; say what was refused
                print(f"{self.name} :: BFD: NOTIFY {spec} {value!r} failed: {e}",
                      file=sys.stderr, flush=True)
            # Under the supervisor, every other worker and the control copy hear it too.
            peer_write = getattr(self.router, "peer_write", None)
            if peer_write is not None:
                peer_write(spec, value)

    # ------------------------------------------------------------------ handlers
    @read_handler("state")
    def h_state(self) -> str:
        """The session state: Up, Down, Init or AdminDown."""
        return self.session.state.label

    @read_handler("session")
    def h_session(self) -> str:
        """The session's variables, one 'name value' line each."""
        s = self.session

        def us(v: int) -> str:
            return unparse_interval(v / 1e6) if v else "0"

        rows = [
            ("state", s.state.label), ("remote_state", s.remote_state.label),
            ("local_discriminator", s.local_discr), ("remote_discriminator", s.remote_discr),
            ("local_diag", f"{s.local_diag} ({diag_text(s.local_diag)})"),
            ("remote_diag", f"{s.remote_diag} ({diag_text(s.remote_diag)})"),
            ("detect_mult", s.detect_mult), ("remote_detect_mult", s.remote_detect_mult),
            ("desired_min_tx", us(s.desired_min_tx)),
            ("required_min_rx", us(s.required_min_rx)),
            ("remote_desired_min_tx", us(s.remote_desired_min_tx)),
            ("remote_min_rx", us(s.remote_min_rx)),
            ("tx_interval", us(s.tx_interval)), ("detect_time", us(s.detect_time)),
            ("poll", "true" if s.polling else "false"),
            ("local", ipaddress.IPv4Address(self.local)),
            ("peer", ipaddress.IPv4Address(self.peer)), ("sport", self.sport),
        ]
        return "\n".join(f"{k} {v}" for k, v in rows)

    @read_handler("sent", combine="sum")
    def h_sent(self) -> int:
        """Control packets sent."""
        return self.sent

    @read_handler("received", combine="sum")
    def h_received(self) -> int:
        """Control packets received and accepted by the session."""
        return self.session.received

    @read_handler("admin")
    def h_admin(self) -> str:
        """'down' while the session is held AdminDown, else 'up'."""
        return "down" if self.session.state is State.ADMIN_DOWN else "up"

    @write_handler("admin")
    def h_set_admin(self, v: str) -> None:
        """'down': hold the session AdminDown; 'up': enable it again."""
        word = v.strip().lower()
        if word not in ("up", "down"):
            raise ValueError(f"expected 'up' or 'down', not {v.strip()!r}")
        now = clock.monotonic()
        acts = self.session.admin_down(now) if word == "down" else self.session.admin_up(now)
        self._apply(acts)
        self._arm()

    @read_handler("interval")
    def h_interval(self) -> str:
        """INTERVAL, as Click prints times."""
        return unparse_interval(self.interval)

    @write_handler("interval")
    def h_set_interval(self, v: str) -> None:
        """Change INTERVAL (a Poll Sequence confirms it while Up)."""
        t = Seconds.parse(v)
        if not MIN_INTERVAL <= t < 4294:
            raise ValueError("interval must be from 1ms to 4294s")
        self.interval = t
        self._apply(self.session.set_intervals(self._interval_us(), self._interval_us(),
                                               clock.monotonic()))
        self._arm()
