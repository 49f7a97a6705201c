"""StaticThreadSched: places tasks on workers explicitly (Click's StaticThreadSched)."""

from __future__ import annotations

from routebricks.engine.args import IntRange
from routebricks.engine.element import Element, read_handler
from routebricks.errors import shown

_WORKER = IntRange(0, 65535, "worker number")


class StaticThreadSched(Element):
    """Pins elements' tasks to workers (Click's threads).

    Ports: none.
    Arguments:
        ELEMENT THREAD... (positional): each argument names an element (or a compound
            element: all elements inside it) and the worker number that runs its task.
    Behaviour: by default a device element (FromDevice, ToDevice) runs on every worker, one
        queue each, and other sources (FromDump, InfiniteSource, ...) on worker 0. A
        placement here overrides that: the task runs on worker THREAD modulo the number of
        workers (a placed FromDevice is read by that worker alone: a port with one queue).
        With one worker it only checks its arguments. A name that matches no
        element, or a negative worker, is a configuration error.
    Handlers:
        placement (read): one ``ELEMENT WORKER`` line per placed element.
    Example:
        src1 :: InfiniteSource -> Discard;  src2 :: InfiniteSource -> Discard;
        StaticThreadSched(src1 0, src2 1);
    See also: DriverManager
    """

    port_count = "0/0"
    processing = "a/a"
    REST = True

    def configure(self) -> None:
        assert self.router is not None
        placement: dict[str, int] = getattr(self.router, "placement", {})
        for arg in self.rest:
            words = arg.split()
            if len(words) != 2 or not words[1].lstrip("-").isdigit():
                raise self.error(f"bad argument {shown(arg)}", "expected 'ELEMENT THREAD'")
            try:
                thread = _WORKER.parse(words[1])
            except ValueError as e:
                raise self.error(f"bad worker {shown(words[1])} for {words[0]!r}: {e}") from None
            name = words[0]
            matches = [n for n in self.router.elements
                       if n == name or n.startswith(name + "/")]
            if not matches:
                raise self.error(f"{name!r} does not name an element")
            for n in matches:
                placement[n] = thread
        self.router.placement = placement
        self.mine = {n: placement[n] for n in placement}

    @read_handler("placement")
    def h_placement(self) -> str:
        """One 'ELEMENT WORKER' line per placed element."""
        return "\n".join(f"{n} {t}" for n, t in sorted(self.mine.items()))
