"""Shared fixtures: paths to bundled data, and a helper to run routers from text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SAMPLE_PCAP = EXAMPLES / "data" / "sample.pcap"


def shared_data_dir() -> Path:
    env = os.environ.get("ROUTEBRICKS_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


@pytest.fixture
def sample_pcap() -> Path:
    return SAMPLE_PCAP

# numba compiles kernels on first use (then caches them on disk): no per-example deadline.
from hypothesis import settings  # noqa: E402

settings.register_profile("routebricks", deadline=None)
settings.load_profile("routebricks")
