"""ToShmQueue and FromShmQueue: a queue between two worker processes, in shared memory.

The two ends of one single-producer single-consumer ring of packets
(:class:`routebricks.packet.shmring.PacketRing`): ToShmQueue takes pushed packets in one
worker, FromShmQueue pushes them out in another — the paper's pipeline (Fig. 6 a: one core
receives, another processes and sends), against which its one-core-per-packet rule was
measured (``routebricks bench``, ``benchmarks/shmqueue.py``).

Why two elements and not one with a push input and a pull output: the two sides run in
different processes, and a pull from another process would need the consumer's task
anyway. FromShmQueue *is* that task, a source on its worker, placed like any source
(worker 0, or where ``StaticThreadSched`` says) and run nowhere else; ToShmQueue has no task
and works in whichever process pushes into it.

The ring is made while the configuration is read (``configure``), in the process that then
forks the workers (the supervisor's control copy), so every worker inherits the same
``MAP_SHARED`` pages; the memory has no name and is freed when the last process mapping it
ends, SIGKILL included.

End of the stream. A FromShmQueue is a source, so its worker runs until it is done: when the
ring is empty and the producer will put no more. Its producer says so (``closed``) when the
producing worker's run ends, whatever ended it (its sources done, STOP, a stop request): the
worker calls :meth:`ToShmQueue.run_ended` before it reports done. In one process (``-j 1``,
or both ends on one worker) nothing needs saying: FromShmQueue is done once the ring is empty
and every other source of the process is.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar

from routebricks.engine.args import Arg, Bool, Burst, IntRange, Word, parse_args
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.errors import ConfigError
from routebricks.packet import shmring
from routebricks.packet.shmring import SLOT_SIZE, PacketRing

if TYPE_CHECKING:
    from routebricks.packet.batch import PacketBatch

QUEUE_FULL = "queue full"
TOO_LONG = "too long for a slot"
NOT_PRODUCER = "pushed outside the producer"

_CAPACITY = IntRange(1, 1 << 24, "packet count")
_SLOT = IntRange(64, 65536, "slot size in bytes")
#: The most shared memory one queue maps (its pages are taken only as packets fill them).
_MAX_BYTES = 4 << 30
_NAME = Arg("NAME", Word, required=True, positional=True, attr="queue",
            help="the queue's name, shared by its two ends")


def _queue_name(e: Element) -> str | None:
    """The NAME a ToShmQueue or FromShmQueue was given, configured yet or not."""
    name = getattr(e, "queue", None)
    if name is None:
        try:
            name = parse_args(e.config, type(e).ARGS).values.get("queue")
        except ConfigError:
            return None  # that element reports its own error
    return name


def _ends(e: Element, cls: type[Element]) -> list[Element]:
    """The other elements of class ``cls`` in ``e``'s router with ``e``'s queue name."""
    assert e.router is not None
    mine = getattr(e, "queue", None)
    return [o for o in e.router.elements.values()
            if o is not e and isinstance(o, cls) and _queue_name(o) == mine]


class _PerWorker:
    """Packets counted per process, keyed 'worker W pid P' (the by_worker handler: merged
    across workers, it tells which worker ran an end, and in which process)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._key = ""
        self._pid = -1

    def add(self, e: Element, n: int) -> None:
        if self._pid != (pid := os.getpid()):  # once per process: a fork changes it
            self._pid, self._key = pid, f"worker {getattr(e.router, 'worker_id', 0)} pid {pid}"
        self.counts[self._key] = self.counts.get(self._key, 0) + n

    def table(self) -> str:
        return "\n".join(f"{n}\t{who}" for who, n in sorted(self.counts.items()))


class ToShmQueue(Element):
    """Puts pushed packets into a shared-memory queue that FromShmQueue empties in another worker.

    Ports: 1 push input; no outputs.
    Arguments:
        NAME (word, positional, required): the queue's name; the FromShmQueue with the
            same NAME takes the packets out.
        CAPACITY (integer, positional, default 4096): packets the queue holds, 1 to
            16777216; CAPACITY x SLOT at most 4 GiB (memory is taken as slots fill).
        SLOT (integer, default 2048): bytes per packet slot, 64 to 65536: the longest
            packet the queue carries.
    Behaviour: the producer end of a single-producer single-consumer ring of CAPACITY
        fixed-size slots in anonymous shared memory, made before the workers fork: packet
        bytes, length and annotations are copied into the slots (one compiled pass per
        batch) and the ring's tail index is then published. Packets that do not fit are
        dropped and counted ("queue full"), as are packets longer than SLOT ("too long for
        a slot"). One process puts into a ring: the first to push (or, at start, the worker
        that runs what feeds it) becomes its producer, and if two workers would feed it
        (a device read on every worker, say) the router refuses to start; packets pushed in
        another process anyway are dropped ("pushed outside the producer"). When the
        producer's run ends, it closes the ring so that FromShmQueue, once it has emptied
        it, is done. Annotations declared by the packet library (paint, dst_ip, timestamp,
        flow_hash, in_port, nh, user, packet_type, ...) cross; ad-hoc ones do not.
    Handlers:
        count (read): packets put into the queue.
        drops (read): dropped packets by reason (queue full, too long for a slot, pushed
            outside the producer).
        length (read): packets in the queue now.
        highwater_length (read): the most packets the queue has held.
        capacity (read): CAPACITY.
        slot (read): SLOT.
        producer (read): the producer's pid (0: none yet).
        by_worker (read): packets put, one 'COUNT<TAB>worker W pid P' line per process.
        reset_counts (write): zero count and drops; set highwater_length to the length.
    Example:
        src :: InfiniteSource(LENGTH 64) -> ToShmQueue(q);
        fsq :: FromShmQueue(q) -> Counter -> Discard;
        StaticThreadSched(src 0, fsq 1);  // routebricks run -j 2: a two-core pipeline
    See also: FromShmQueue, Queue, StaticThreadSched
    """

    port_count = "1/0"
    processing = "h/"
    ARGS = (
        _NAME,
        Arg("CAPACITY", _CAPACITY, 4096, positional=True),
        Arg("SLOT", _SLOT, SLOT_SIZE),
    )
    DROPS: ClassVar[dict[str, str]] = {
        QUEUE_FULL: "the ring had no room (the consumer fell behind)",
        TOO_LONG: "the packet is longer than the ring's slots (SLOT)",
        NOT_PRODUCER: "pushed in a process other than the ring's producer",
    }
    JIT_WARMUP = (shmring.warmup,)
    HOT_STATE = ("ring", "_producer", "count", "per_worker")

    def configure(self) -> None:
        if _ends(self, ToShmQueue):
            raise self.error(f"another ToShmQueue is named {self.queue!r}",
                             "a queue has one producer end: give each its own NAME")
        self.count = 0
        self.per_worker = _PerWorker()
        self._producer = False
        size = self.capacity * self.slot
        if size > _MAX_BYTES:
            raise self.error(f"CAPACITY x SLOT is {size} bytes of shared memory, more than "
                             f"{_MAX_BYTES >> 30} GiB", "make the queue or its slots smaller")
        try:
            self.ring = PacketRing(self.capacity, self.slot,
                                   name=f"rb-shmqueue-{self.queue}")
        except OSError as e:
            raise self.error(f"cannot make the queue's shared memory: {e.strerror or e}"
                             ) from None

    def initialize(self) -> None:
        """Claim the ring if this process runs a task that feeds it: a second worker that
        would feed it too is refused here, before any packet moves."""
        if not self._feeds_here():
            if self._feeds_here(self.router.left_out if self.router else []):
                # A restarted producer whose sources do not run again (they would repeat
                # their packets): the stream ended with the dead process, so close the
                # ring in its place; the consumer is done once it has emptied it.
                self.ring.claim()
                self.ring.close()
            return
        owner = self.ring.claim()
        if owner != os.getpid():
            raise self.error(
                f"packets would reach it in two processes (pids {owner} and "
                f"{os.getpid()}): a shared-memory queue has one producer",
                "place what feeds it on one worker (StaticThreadSched), or give each "
                "worker a queue of its own")
        self._producer = True

    def _feeds_here(self, tasks: list[Element] | None = None) -> bool:
        """Whether a task of this process (after placement; or one of ``tasks``) is
        upstream of this element."""
        r = self.router
        if r is None:
            return False
        into: dict[str, list[str]] = {}
        for c in r.connections:
            into.setdefault(c.dst, []).append(c.src)
        seen: set[str] = set()
        todo = [self.name]
        while todo:
            for src in into.get(todo.pop(), ()):
                if src not in seen:
                    seen.add(src)
                    todo.append(src)
        return any(t.name in seen for t in (r.tasks if tasks is None else tasks))

    def run_ended(self) -> None:
        """The worker's run ended: as the producer, close the ring (the end of the stream;
        everything put before stays readable)."""
        if self._producer:
            self.ring.close()

    def push(self, port: int, batch: PacketBatch) -> None:
        n = len(batch)
        if not n:
            return
        if not self._producer:
            if self.ring.claim() != os.getpid():
                self.drop(batch, NOT_PRODUCER)
                return
            self._producer = True
        try:
            k = self.ring.put(batch)
        except ValueError:  # a packet longer than a slot: nothing was put
            long = batch.length > self.slot
            if not long.any():
                raise
            self.drop(batch.select(long), TOO_LONG)
            batch = batch.select(~long)
            n = len(batch)
            k = self.ring.put(batch)
        if k:
            self.count += k
            self.per_worker.add(self, k)
        if k < n:
            self.drop(batch.slice(k, n), QUEUE_FULL)

    # ------------------------------------------------------------------ handlers
    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets put into the queue."""
        return self.count

    @read_handler("length")
    def h_length(self) -> int:
        """Packets in the queue now (shared: every worker reads the same ring)."""
        return len(self.ring)

    @read_handler("highwater_length")
    def h_highwater(self) -> int:
        """The most packets the queue has held."""
        return self.ring.highwater

    @read_handler("capacity")
    def h_capacity(self) -> int:
        """The most packets the queue holds."""
        return self.ring.capacity

    @read_handler("slot")
    def h_slot(self) -> int:
        """Bytes per packet slot: the longest packet the queue carries."""
        return self.ring.slot_size

    @read_handler("producer")
    def h_producer(self) -> int:
        """The producer's pid (0: none yet)."""
        return self.ring.owner

    @read_handler("by_worker", combine="merge")
    def h_by_worker(self) -> str:
        """Packets put, one 'COUNT<TAB>worker W pid P' line per process."""
        return self.per_worker.table()

    @write_handler("reset_counts")
    def h_reset_counts(self, _: str) -> None:
        """Zero count and drops; set highwater_length to the current length."""
        self.count = 0
        self.per_worker = _PerWorker()
        self.drops.clear()
        self.ring.reset_highwater()


class FromShmQueue(Element):
    """Takes packets out of a shared-memory queue that ToShmQueue fills in another worker.

    Ports: no inputs; 1 push output.
    Arguments:
        NAME (word, positional, required): the name of the ToShmQueue to take from.
        BURST (positive integer, positional, default --kp): the most packets per task run
            (one batch).
        ACTIVE (bool, default true): whether to take packets out.
    Behaviour: the consumer end of ToShmQueue's ring: each task run copies up to BURST
        packets out of the slots into a fresh batch (packet bytes, lengths and the
        annotations that crossed), frees the slots and pushes the batch on. It is a source
        that runs on one worker only — worker 0, or the one StaticThreadSched gives it —
        and is done when the ring is empty and closed (its producer's run ended), or, with
        the producer in the same process, when the ring is empty and the process's other
        sources are done: a run through a queue ends with every packet out. Nothing is
        dropped here. A worker restarted after a crash does not take packets out again
        (the runtime starts no source but devices in a restarted worker).
    Handlers:
        count (read): packets taken out.
        length (read): packets in the queue now.
        closed (read): whether the producer has closed the queue.
        by_worker (read): packets taken out, one 'COUNT<TAB>worker W pid P' line per
            process (which worker ran the consumer).
        burst (read/write), active (read/write).
        reset_counts (write): zero count.
    Example:
        src :: InfiniteSource(LIMIT 100000, STOP true) -> ToShmQueue(q, 8192);
        fsq :: FromShmQueue(q, 256) -> c :: Counter -> Discard;
        StaticThreadSched(src 0, fsq 1);
    See also: ToShmQueue, Unqueue, StaticThreadSched
    """

    port_count = "0/1"
    processing = "/h"
    IS_SOURCE = True
    RESUMES = True  # what the ring holds is still there for a restarted consumer
    ARGS = (
        _NAME,
        Arg("BURST", Burst, None, positional=True),
        Arg("ACTIVE", Bool, True),
    )
    JIT_WARMUP = (shmring.warmup,)
    HOT_STATE = ("ring", "count", "per_worker")

    def configure(self) -> None:
        if not _ends(self, ToShmQueue):
            raise self.error(f"no ToShmQueue is named {self.queue!r}",
                             f"add one: ... -> ToShmQueue({self.queue})")
        if _ends(self, FromShmQueue):
            raise self.error(f"another FromShmQueue takes from {self.queue!r}",
                             "a queue has one consumer end")
        self.count = 0
        self.per_worker = _PerWorker()
        self._asking = False  # is_done's guard against a cycle of queues in one process
        self._fed_here = False
        self.ring: PacketRing | None = None

    def initialize(self) -> None:
        producer = _ends(self, ToShmQueue)[0]
        self.ring = producer.ring  # type: ignore[attr-defined]
        # Whether this process feeds the ring too (one process, or both ends placed on one
        # worker): then no one else closes it, and done means "the others here are done".
        self._fed_here = producer._feeds_here()  # type: ignore[attr-defined]

    def _kp(self) -> int:
        if self.burst:
            return int(self.burst)
        return int(getattr(self.router, "kp", 1024))

    def run_task(self) -> bool:
        if not self.active or self.ring is None:
            return False
        b = self.ring.get(self._kp())
        if b is None:
            return False
        n = len(b)
        self.count += n
        self.per_worker.add(self, n)
        self.emit(0, b)
        return True

    def is_done(self) -> bool:
        ring = self.ring
        if ring is None:
            return True
        if self._asking:
            # Asked again through a cycle of queues in one process: answer for the others,
            # the outer call checks this ring itself.
            return True
        if ring.closed:  # read before the length: what was put before closing is seen
            return len(ring) == 0
        if len(ring):
            return False
        owner = ring.owner
        if owner != os.getpid() and not (owner == 0 and self._fed_here):
            return False  # another process produces: wait until it closes the ring
        # The producer is this process: done when nothing else here will send.
        self._asking = True
        try:
            r = self.router
            return r is not None and all(s.is_done() for s in r.sources if s is not self)
        finally:
            self._asking = False

    def holds_packets(self) -> bool:
        return self.ring is not None and len(self.ring) > 0

    # ------------------------------------------------------------------ handlers
    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets taken out."""
        return self.count

    @read_handler("length")
    def h_length(self) -> int:
        """Packets in the queue now."""
        return len(self.ring) if self.ring is not None else 0

    @read_handler("closed")
    def h_closed(self) -> bool:
        """Whether the producer has closed the queue (its run ended)."""
        return self.ring is not None and self.ring.closed

    @read_handler("by_worker", combine="merge")
    def h_by_worker(self) -> str:
        """Packets taken out, one 'COUNT<TAB>worker W pid P' line per process."""
        return self.per_worker.table()

    @read_handler("burst")
    def h_burst(self) -> int:
        """The most packets per task run."""
        return self._kp()

    @write_handler("burst")
    def h_set_burst(self, v: str) -> None:
        """Set the most packets per task run."""
        self.burst = Burst.parse(v)

    @read_handler("active")
    def h_active(self) -> bool:
        """Whether to take packets out."""
        return self.active

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Start (true) or pause (false) taking packets out."""
        self.active = Bool.parse(v)

    @write_handler("reset_counts")
    def h_reset_counts(self, _: str) -> None:
        """Zero count."""
        self.count = 0
        self.per_worker = _PerWorker()


