"""Inputs of benchmarks/iprouting.py and benchmarks/cluster_roles.py: they live in
:mod:`routebricks.bench.frames` (route tables, route files, destinations, pcaps)."""

from routebricks.bench.frames import *  # noqa: F403
from routebricks.bench.frames import __all__  # noqa: F401
