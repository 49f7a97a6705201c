"""``routebricks bench``: RouteBricks' experiments (SOSP 2009) run on this machine.

Each experiment is a module that registers itself (:func:`~routebricks.bench.core.
experiment`): ``fig3`` (servers vs ports, from the planner), ``table1`` (batching),
``fig6`` (parallel vs pipeline through the shared-memory queue,
:mod:`~routebricks.bench.pipeline`), ``fig7``
(batching and multiple queues together), ``fig8`` (loss-free rate vs size and
application, the Linux kernel beside), ``fig9`` (cost per packet and per element) and
``rb4`` (§6.2, the four-server cluster). :mod:`~routebricks.bench.runner` runs them with
progress bars and writes ``report.md`` and ``results.json`` (:mod:`~routebricks.bench.
report`); :mod:`~routebricks.bench.cli` is the command.

The machinery the experiments share is here too, and the scripts under ``benchmarks/`` call
it rather than repeat it: :mod:`~routebricks.bench.memory` (routers fed from pcaps, on one
or several cores), :mod:`~routebricks.bench.frames` and :mod:`~routebricks.bench.ipsecdata`
(inputs), :mod:`~routebricks.bench.topology` (veth testbeds, the kernel FIB),
:mod:`~routebricks.bench.veth` (the loss-free-rate search with traffic agents) and
:mod:`~routebricks.bench.drain` (the router draining a backlog: its own rate).
"""
