"""The element library, grouped as Click groups it (standard, ethernet, ip, ipsec, io,
cluster). Any element class can be imported from here by name::

    from routebricks.elements import FromDump, Counter
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from routebricks.engine.registry import get_class

    cls = get_class(name)
    if cls is None:
        raise AttributeError(f"no element class {name!r}")
    return cls
