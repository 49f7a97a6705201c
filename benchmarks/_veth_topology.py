"""The veth topologies of benchmarks/veth_*.py: they live in :mod:`routebricks.bench.topology`."""

from routebricks.bench.topology import *  # noqa: F403
