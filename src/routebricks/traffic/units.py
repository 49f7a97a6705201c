"""Rates as text: packet rates in Mpps and bit rates in Gbps, the paper's units; several
with the same decimals so that they compare at a glance."""

from __future__ import annotations

import math

__all__ = ["gbps_text", "mpps_text"]


def _in_unit(values: tuple[float, ...], scale: float, unit: str) -> list[str]:
    """Three decimals, or four significant digits of the largest when it is below 0.1."""
    top = max((abs(v) / scale for v in values), default=0.0)
    decimals = 3
    if 0 < top < 0.1:
        decimals = min(9, 3 - math.floor(math.log10(top)))
    return [f"{v / scale:.{decimals}f} {unit}" for v in values]


def mpps_text(*pps: float) -> list[str]:
    """``pps`` values in Mpps: ``mpps_text(296e3, 5e5)`` -> ``["0.296 Mpps", "0.500 Mpps"]``;
    ``mpps_text(9_500, 10_000)`` -> ``["0.00950 Mpps", "0.01000 Mpps"]``."""
    return _in_unit(pps, 1e6, "Mpps")


def gbps_text(*bps: float) -> list[str]:
    """``bps`` values in Gbps, as :func:`mpps_text`: ``gbps_text(1.024e7)`` ->
    ``["0.01024 Gbps"]``."""
    return _in_unit(bps, 1e9, "Gbps")
