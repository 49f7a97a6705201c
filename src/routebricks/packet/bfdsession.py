"""A BFD session in asynchronous mode (RFC 5880 §6.8): the state machine, its timers and
what it sends, as a pure object. Time is passed in (seconds, any monotonic clock); nothing
here sleeps, reads a clock or touches a socket, so the tests drive it packet by packet.

The owner calls :meth:`Session.start` once, :meth:`Session.receive` with every control packet
that passed :func:`routebricks.packet.bfd.decode`, and :meth:`Session.tick` at (or after)
:meth:`Session.next_deadline`. Each returns :class:`Actions`: the packets to send now, the
state changes that happened, and whether a received packet was discarded (and why).

Timers follow §6.8.3/§6.8.7: while the session is not Up the advertised Desired Min TX is at
least one second (the slow rate), but every state change sends a packet at once, so a
handshake takes a few packet times, not seconds. Going Up lowers Desired Min TX, which
starts a Poll Sequence; an increase while Up takes effect only when the Poll ends (a reduced
Required Min RX likewise, for the detection time). Periodic packets are jittered (§6.8.7:
reduced by 0-25%, or to 75-90% with a detect multiplier of 1). Demand mode is honoured on the
remote side (we stop periodic packets when the peer asks), never asked for; authentication is
not implemented (packets with the A bit are discarded, as §6.8.6 says for bfd.AuthType 0).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from routebricks.packet.bfd import ControlPacket, Diag, State

#: Desired Min TX while the session is not Up (RFC 5880 §6.8.3: at least one second).
SLOW_TX_US = 1_000_000


@dataclass(frozen=True)
class Transition:
    """A change of the local session state, and the diagnostic it left."""

    old: State
    new: State
    diag: int

    @property
    def up_changed(self) -> bool:
        """Whether the session came Up or left Up (what the users of a session hear of)."""
        return (self.old is State.UP) != (self.new is State.UP)


@dataclass
class Actions:
    """What a session call asks its owner to do."""

    send: list[ControlPacket] = field(default_factory=list)
    changes: list[Transition] = field(default_factory=list)
    #: Why the received packet was discarded (a drop reason), None if it was taken.
    drop: str | None = None


class Session:
    """One asynchronous-mode session (RFC 5880 §6.8.1 names in comments).

    Intervals are microseconds, as on the wire. ``rng`` draws the transmit jitter.
    """

    def __init__(self, local_discr: int, *, detect_mult: int = 3, desired_min_tx: int = 100_000,
                 required_min_rx: int = 100_000, rng: random.Random | None = None) -> None:
        if not 0 < local_discr < 1 << 32:
            raise ValueError("the local discriminator must be nonzero and fit in 32 bits")
        if not 0 < detect_mult < 256:
            raise ValueError("the detect multiplier must be 1 to 255")
        for name, v in (("desired_min_tx", desired_min_tx), ("required_min_rx", required_min_rx)):
            if not 0 < v < 1 << 32:
                raise ValueError(f"{name} must be 1 to 2^32-1 microseconds")
        self.rng = rng or random.Random()
        self.local_discr = local_discr  # bfd.LocalDiscr
        self.detect_mult = detect_mult  # bfd.DetectMult
        self.up_min_tx = desired_min_tx  # the configured rate, advertised while Up
        self.required_min_rx = required_min_rx  # bfd.RequiredMinRxInterval
        self.state = State.DOWN  # bfd.SessionState
        self.remote_state = State.DOWN  # bfd.RemoteSessionState
        self.remote_discr = 0  # bfd.RemoteDiscr
        self.local_diag = 0  # bfd.LocalDiag
        self.desired_min_tx = max(desired_min_tx, SLOW_TX_US)  # bfd.DesiredMinTxInterval
        self.remote_min_rx = 1  # bfd.RemoteMinRxInterval
        self.remote_demand = False  # bfd.RemoteDemandMode
        self.remote_desired_min_tx = 0  # last Desired Min TX received
        self.remote_detect_mult = 0
        self.remote_diag = 0
        self.polling = False  # a Poll Sequence is being transmitted
        # What the timers use, which lags the advertised values while a Poll runs (§6.8.3).
        self.tx_min_in_use = self.desired_min_tx
        self.rx_min_in_use = required_min_rx
        self.started = False
        self.last_tx = -math.inf
        self.next_tx = math.inf
        self.detect_deadline = math.inf
        self.sent = 0
        self.received = 0

    # ------------------------------------------------------------------ derived values
    @property
    def tx_interval(self) -> int:
        """The negotiated transmit interval (us): the larger of ours and the peer's wish."""
        return max(self.tx_min_in_use, self.remote_min_rx)

    @property
    def detect_time(self) -> int:
        """The detection time (us, §6.8.4): the peer's multiplier times the larger of our
        Required Min RX and its Desired Min TX; 0 before anything was heard."""
        return self.remote_detect_mult * max(self.rx_min_in_use, self.remote_desired_min_tx)

    def next_deadline(self) -> float:
        """When :meth:`tick` has something to do next (inf: nothing until a packet)."""
        return min(self.next_tx, self.detect_deadline)

    def _periodic(self) -> bool:
        """Whether periodic packets go out (§6.8.7): not to a peer that asks for none
        (Required Min RX 0), nor to one in Demand mode while both are Up and no Poll runs."""
        if not self.started or self.remote_min_rx == 0:
            return False
        demand = (self.remote_demand and self.state is State.UP
                  and self.remote_state is State.UP)
        return not demand or self.polling

    def _jittered(self, interval_us: int) -> float:
        if self.detect_mult == 1:
            factor = self.rng.uniform(0.75, 0.90)
        else:
            factor = 1.0 - self.rng.uniform(0.0, 0.25)
        return interval_us * factor / 1e6

    def _schedule_tx(self) -> None:
        self.next_tx = (self.last_tx + self._jittered(self.tx_interval)
                        if self._periodic() else math.inf)

    # ------------------------------------------------------------------ sending
    def packet(self, final: bool = False) -> ControlPacket:
        """The control packet to send now (§6.8.7), answering a Poll if ``final``."""
        return ControlPacket(
            state=self.state, diag=self.local_diag, my_discr=self.local_discr,
            your_discr=self.remote_discr, detect_mult=self.detect_mult,
            desired_min_tx=self.desired_min_tx, required_min_rx=self.required_min_rx,
            required_min_echo_rx=0, poll=self.polling and not final, final=final)

    def _send(self, acts: Actions, now: float, final: bool = False) -> None:
        acts.send.append(self.packet(final))
        self.sent += 1
        self.last_tx = now
        self._schedule_tx()  # the periodic timer restarts from every packet sent

    # ------------------------------------------------------------------ state changes
    def _change(self, acts: Actions, new: State, diag: int | None = None) -> None:
        old = self.state
        if diag is not None:
            self.local_diag = diag
        self.state = new
        if new is State.UP:
            self.local_diag = Diag.NONE
            if self.desired_min_tx != self.up_min_tx:
                # §6.8.3: leave the slow rate; a lower rate applies at once, the change is
                # confirmed by a Poll Sequence.
                self.desired_min_tx = self.up_min_tx
                self.tx_min_in_use = min(self.tx_min_in_use, self.up_min_tx)
                self.polling = True
        elif old is State.UP or new is State.ADMIN_DOWN:
            self.desired_min_tx = self.tx_min_in_use = max(self.up_min_tx, SLOW_TX_US)
            self.rx_min_in_use = self.required_min_rx
            self.polling = False
        acts.changes.append(Transition(old, new, self.local_diag))

    def start(self, now: float) -> Actions:
        """Begin: send the first packet (Down) now and run the timers from here."""
        acts = Actions()
        if not self.started:
            self.started = True
            self._send(acts, now)
        return acts

    def receive(self, pkt: ControlPacket, now: float) -> Actions:
        """Take a control packet that passed :func:`decode` (RFC 5880 §6.8.6, from the
        session selection on)."""
        acts = Actions()
        if pkt.your_discr != 0 and pkt.your_discr != self.local_discr:
            acts.drop = "unknown discriminator"
            return acts
        if pkt.auth:
            acts.drop = "authentication"  # bfd.AuthType is 0: §6.8.6 discards it
            return acts
        self.remote_discr = pkt.my_discr
        self.remote_state = pkt.state
        self.remote_demand = pkt.demand
        self.remote_desired_min_tx = pkt.desired_min_tx
        self.remote_detect_mult = pkt.detect_mult
        self.remote_diag = pkt.diag
        if pkt.required_min_rx != self.remote_min_rx:
            self.remote_min_rx = pkt.required_min_rx
            self._schedule_tx()  # §6.8.7: the interval follows the peer's new wish
        if self.polling and pkt.final:
            self.polling = False  # the Poll Sequence ends: the new timers apply fully
            self.tx_min_in_use = self.desired_min_tx
            self.rx_min_in_use = self.required_min_rx
        if self.state is State.ADMIN_DOWN:
            acts.drop = "admin down"
            return acts
        self.received += 1
        self.detect_deadline = now + self.detect_time / 1e6
        before = self.state
        if pkt.state is State.ADMIN_DOWN:
            if self.state is not State.DOWN:
                self._change(acts, State.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)
        elif self.state is State.DOWN:
            if pkt.state is State.DOWN:
                self._change(acts, State.INIT)
            elif pkt.state is State.INIT:
                self._change(acts, State.UP)
        elif self.state is State.INIT:
            if pkt.state in (State.INIT, State.UP):
                self._change(acts, State.UP)
        elif pkt.state is State.DOWN:  # Up
            self._change(acts, State.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)
        if pkt.poll:
            self._send(acts, now, final=True)  # §6.8.7: a Final at once, P clear
        elif self.state is not before:
            self._send(acts, now)  # tell the peer at once (§6.8.7 SHOULD)
        else:
            self._schedule_tx()  # Demand mode or the peer's rate may have changed
        return acts

    def tick(self, now: float) -> Actions:
        """Run the timers: the detection time (§6.8.4) and periodic transmission."""
        acts = Actions()
        if now >= self.detect_deadline:
            self.detect_deadline = math.inf
            self.remote_discr = 0  # §6.8.1: forgotten after a detection time of silence
            self.remote_min_rx = 1  # §6.8.18: back to our own rate
            self.remote_demand = False
            if self.state in (State.INIT, State.UP):
                self._change(acts, State.DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED)
                self._send(acts, now)
                return acts
            self._schedule_tx()
        if now >= self.next_tx:
            self._send(acts, now)
        return acts

    # ------------------------------------------------------------------ management
    def admin_down(self, now: float) -> Actions:
        """§6.8.16: hold the session AdminDown (packets keep going, at the slow rate, so
        the peer knows why; received packets are discarded)."""
        acts = Actions()
        if self.state is not State.ADMIN_DOWN:
            self._change(acts, State.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN)
            self.detect_deadline = math.inf
            if self.started:
                self._send(acts, now)
        return acts

    def admin_up(self, now: float) -> Actions:
        """§6.8.16: enable the session again: Down, and the handshake starts over."""
        acts = Actions()
        if self.state is State.ADMIN_DOWN:
            self._change(acts, State.DOWN, Diag.NONE)
            if self.started:
                self._send(acts, now)
        return acts

    def set_intervals(self, desired_min_tx: int, required_min_rx: int, now: float) -> Actions:
        """Change our timers (us). While Up a Poll Sequence confirms the change, and an
        increase of the transmit interval, or a decrease of the receive interval, applies
        only when it ends (§6.8.3)."""
        for name, v in (("desired_min_tx", desired_min_tx), ("required_min_rx", required_min_rx)):
            if not 0 < v < 1 << 32:
                raise ValueError(f"{name} must be 1 to 2^32-1 microseconds")
        acts = Actions()
        up = self.state is State.UP
        advertised = desired_min_tx if up else max(desired_min_tx, SLOW_TX_US)
        changed = (advertised, required_min_rx) != (self.desired_min_tx, self.required_min_rx)
        self.up_min_tx = desired_min_tx
        self.desired_min_tx = advertised
        self.required_min_rx = required_min_rx
        if not up or advertised < self.tx_min_in_use:
            self.tx_min_in_use = advertised
        if not up or required_min_rx > self.rx_min_in_use:
            self.rx_min_in_use = required_min_rx
        if changed:
            self.polling = self.polling or up
            if self.started:
                self._send(acts, now)  # the contents changed: send at once (§6.8.7)
        return acts
