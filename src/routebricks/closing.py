"""Closing: the ``with`` statement for the objects that own an OS resource and close()."""

from __future__ import annotations

from typing import Self


class Closing:
    """Mixin: ``with obj:`` calls ``obj.close()`` on the way out, however it is left."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
