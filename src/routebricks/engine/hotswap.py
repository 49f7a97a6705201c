"""Hot reconfiguration (Click's ``-R`` and ``hotconfig`` handler): a new configuration
replaces the running one between two batches.

The new router is parsed, checked and initialized while the old one still runs; any error
there is the writer's answer and the old configuration keeps running. Then, between two
batches, each new element whose name and class match a running one takes its state
(:meth:`Element.take_state`: counts, route and ARP tables, queued packets), the old
elements are cleaned up, and the running router adopts the new graph in place, so whoever
holds the router (the CLI, a worker, the supervisor's control copy) keeps holding it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routebricks.errors import ConfigError, HandlerError, RouteBricksError

if TYPE_CHECKING:
    from routebricks.engine.router import Router

#: What the running router takes over from its successor (the rest of its settings —
#: kp, workers, control endpoint, heartbeat, limits — stay as they are).
_ADOPTED = ("graph", "elements", "connections", "tasks", "sources", "_timers",
            "stop_listener", "placement")


def prepare(router: Router, text: str) -> Router:
    """The router ``text`` describes, checked, built with ``router``'s settings (not yet
    initialized). Raises HandlerError with the configuration's errors."""
    from routebricks.engine.router import Router, parse_text

    try:
        graph = parse_text(text, "<hotconfig>", base_dir=router.graph.base_dir)
        new = Router(graph, profile=router.profile, warnings=router.warnings)
    except ConfigError as e:
        raise HandlerError(f"new configuration refused; the old one keeps running:\n{e}"
                           ) from None
    if router.kp_set:
        new.kp = router.kp
    for attr in ("worker_id", "nworkers", "instance", "idle_spin", "peer_write"):
        setattr(new, attr, getattr(router, attr))
    return new


def initialize(new: Router) -> None:
    try:
        new.initialize()
    except RouteBricksError as e:
        raise HandlerError(f"new configuration refused; the old one keeps running:\n{e}"
                           ) from None


def commit(router: Router, new: Router) -> None:
    """Swap ``new`` (initialized, or not when ``router`` is not) into ``router`` in place."""
    old = router.elements
    if router.tracer is not None:  # it follows the old elements: stop it
        router.tracer.detach()
        router.tracer = None
    # Tables first: an element that shares a table (ARPQuerier TABLE) finds it taken.
    order = sorted(new.elements.values(), key=lambda e: e.HOT_ORDER)
    for e in order:
        prev = old.get(e.name)
        if prev is not None and type(prev) is type(e):
            e.take_state(prev)
    if router._initialized:
        for e in reversed(list(old.values())):
            e.cleanup()
    for attr in _ADOPTED:
        setattr(router, attr, getattr(new, attr))
    for e in router.elements.values():
        e.router = router
    router._initialized = new._initialized
    new._initialized = False  # its elements belong to ``router`` now
    if router.after_swap is not None:
        router.after_swap(router)
