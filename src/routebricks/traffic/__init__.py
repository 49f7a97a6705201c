"""The traffic layer: the paper's measurements.

* :mod:`~routebricks.traffic.frames` -- vectorized Ethernet/IPv4/UDP frame synthesis with a
  probe header (flow id, per-flow sequence number, send time); fixed sizes or the Internet mix.
* :mod:`~routebricks.traffic.gen` -- :class:`~routebricks.traffic.gen.Generator`: frames out
  of an interface at a target rate (token bucket) or as fast as possible, in batches.
* :mod:`~routebricks.traffic.sink` -- :class:`~routebricks.traffic.sink.Sink`: per-flow
  counts, loss, reordering, latency and rate of the probe frames that arrive.
* :mod:`~routebricks.traffic.lossfree` -- the maximum loss-free forwarding rate by binary
  search over trials (run on a generator and a sink agent for ``routebricks lossfree``).
* :mod:`~routebricks.traffic.agents` -- a generator or a sink in its own process, in any
  namespace, driven from the library.
* :mod:`~routebricks.traffic.units` -- packet rates as text, in one unit.
* :mod:`~routebricks.traffic.cli` -- ``routebricks gen`` and ``routebricks sink``.
* :mod:`~routebricks.traffic.lossfree_cli` -- ``routebricks lossfree``.

Submodules are imported on demand (``from routebricks.traffic.gen import Generator``) so
that loading the command line stays fast.
"""
