"""The router's clock: real time, or Click's simulated time (``--simtime``).

Elements and the driver read time here, never from :mod:`time` directly, so that under
simulated time timers fire in order without real waiting: when the router has nothing to
do, the clock jumps to the next timer. Timestamps start at the wall clock's time when the
simulation began and advance only with the simulated clock.
"""

from __future__ import annotations

import time as _time

# Simulated time: [monotonic ns now, monotonic ns at the start, wall ns at the start].
_sim: list[int] | None = None


def simulate(on: bool = True, start: float | None = None) -> None:
    """Switch simulated time on or off; timestamps begin at ``start`` (seconds since the
    epoch; Click's --simtime begins at 1000000000) or at the real time now."""
    global _sim
    mono = _time.monotonic_ns()
    wall = _time.time_ns() if start is None else int(start * 1e9)
    _sim = [mono, mono, wall] if on else None


def simulated() -> bool:
    return _sim is not None


def advance_to(t: float) -> None:
    """Under simulated time, move the clock forward to monotonic time ``t`` (seconds)."""
    advance_to_ns(round(t * 1e9))


def advance_to_ns(t: int) -> None:
    """As advance_to, in integer nanoseconds (seconds as a float near a large monotonic
    value are only good to a few hundred nanoseconds)."""
    if _sim is not None:
        _sim[0] = max(_sim[0], t)


def monotonic_ns() -> int:
    return _sim[0] if _sim is not None else _time.monotonic_ns()


def monotonic() -> float:
    return _sim[0] / 1e9 if _sim is not None else _time.monotonic()


def time_ns() -> int:
    return _time.time_ns() if _sim is None else _sim[2] + (_sim[0] - _sim[1])


def time() -> float:
    return time_ns() / 1e9
