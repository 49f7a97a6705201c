"""``routebricks run --metrics ADDR:PORT``: a supervised router's counters for Prometheus.

An HTTP server in the supervisor serves ``/metrics`` in Prometheus' text format. Nothing is
kept up to date between scrapes: each scrape asks the router, as ``routebricks handler``
and ``top`` do (:meth:`Supervisor.ask`): the supervisor answers the ``workers`` table itself
and every worker sends its ``stats`` rows between two of its batches, so a scrape never
holds up packets. A worker that does not answer within the supervisor's request timeout
(5 s: stopped, hung) is shown with the counters it reported last (the supervisor takes them
every second), so a scrape always ends.

Every series of an element carries the labels ``element``, ``class`` and ``worker``; the
router's total is ``sum without (worker) (...)``. Counters stay monotonic when a worker is
restarted: a worker slot's series go on from what its earlier processes counted (what the
supervisor kept of them, or what was shown last, whichever is more), and a value never
goes back when a stopped worker's last report is older than what an earlier scrape showed.
A slot restarted more than once between two scrapes loses the counts of the processes no
scrape saw (the router's totals, the ``stats`` handler, keep them).

What is exported (``routebricks_`` and):

* ``element_packets_total``, ``element_calls_total``: packets and batches an element handled;
* ``element_drops_total`` (label ``reason``): packets it dropped, by reason;
* ``element_self_seconds_total``: time spent in the element's own code (not downstream);
* ``element_self_seconds_per_packet``: that time per packet, over the worker's lifetime
  (``top``'s ns/pkt, in seconds);
* ``ring_drops_total`` (labels ``device``, ``reason``): packets a device's receive ring lost
  (the reasons its class declares as ``RING_DROPS``; they are among its drops too);
* ``worker_up``, ``worker_restarts_total`` (label ``worker``): from the ``workers`` handler;
* ``router_info`` (labels ``version``, ``name``, ``config``).

Packets, calls and self time are measured by the profiler, which supervised routers run
unless ``--no-profile`` is given.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from routebricks.errors import RouteBricksError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from routebricks.runtime.supervisor import Supervisor

#: Where ``--metrics :PORT`` listens.
DEFAULT_HOST = "127.0.0.1"

#: (field, element, class, drop reason): one counter of one element in one worker.
Key = tuple[str, str, str, str]
_FIELDS = ("calls", "packets", "self_ns")


# ---------------------------------------------------------------------- the address
def parse_listen_address(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (an IPv4 address, ``[IPv6]``, ``localhost``) or ``:PORT`` (on
    127.0.0.1) as ``(host, port)``; a RouteBricksError that says what to write otherwise."""
    host, sep, port_text = text.strip().rpartition(":")
    bad = (f"--metrics: bad address {text!r}: write ADDR:PORT, e.g. 127.0.0.1:9100, "
           "[::1]:9100 or :9100 (on 127.0.0.1)")
    if not sep or not re.fullmatch(r"\d{1,5}", port_text):
        raise RouteBricksError(bad)
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise RouteBricksError(f"--metrics: bad port {port} in {text!r}: use 1 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise RouteBricksError(bad)
    elif ":" in host:
        raise RouteBricksError(bad + " (an IPv6 address goes in brackets)")
    if host in ("", "localhost"):
        return DEFAULT_HOST, port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise RouteBricksError(bad + f" ({host!r} is not an IP address)") from None
    return host, port


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bind_error(host: str, port: int, e: OSError) -> RouteBricksError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    why = e.strerror or str(e)
    hint = {errno.EADDRINUSE: "another program (or router) serves that port: choose another",
            errno.EADDRNOTAVAIL: "no interface of this host (namespace) has that address",
            errno.EACCES: "ports below 1024 need root"}.get(e.errno or 0)
    return RouteBricksError(f"--metrics: cannot listen on {where}: {why}"
                            + (f" ({hint})" if hint else ""))


def check_listen_address(host: str, port: int) -> None:
    """Refuse an address this process cannot listen on (not its own, a port in use) before
    the router starts; the real server binds once the workers run."""
    s = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        s.bind((host, port))
        s.listen(1)  # a port bound (not listening) elsewhere shows up here
    except OSError as e:
        raise _bind_error(host, port, e) from None
    finally:
        s.close()


# ---------------------------------------------------------------------- the collector
def _values(rows: Iterable[dict[str, Any]]) -> dict[Key, int]:
    out: dict[Key, int] = {}
    for r in rows:
        e, c = r["element"], r["class"]
        for f in _FIELDS:
            out[(f, e, c, "")] = r.get(f) or 0
        for why, n in (r.get("drop_reasons") or {}).items():
            out[("drops", e, c, why)] = n
    return out


class _Slot:
    """The counters of one worker slot (worker N and the processes restarted in its
    place): ``base`` what earlier processes counted, ``last`` the current one's highest."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker  # the supervisor's record of the current process
        self.base: dict[Key, int] = {}
        self.last: dict[Key, int] = {}

    def retire(self, final: dict[Key, int]) -> None:
        """The current process is gone; ``final``: its counters as the supervisor kept
        them (they may be older than what a scrape showed: the larger counts)."""
        for k in self.last.keys() | final.keys():
            self.base[k] = self.base.get(k, 0) + max(self.last.get(k, 0), final.get(k, 0))
        self.last = {}

    def update(self, values: dict[Key, int], fresh: bool) -> None:
        """The current process's counters: ``fresh`` from it, else the supervisor's last
        snapshot, which may be older than what was shown (and than a new configuration)."""
        if fresh:
            # An element gone from a fresh answer (a new configuration took it away): what
            # it counted stays, and an element of that name added later counts on top.
            present = {(e, c) for _, e, c, _ in values}
            for k in [k for k in self.last if (k[1], k[2]) not in present]:
                self.base[k] = self.base.get(k, 0) + self.last.pop(k)
        elif self.last:
            values = {k: v for k, v in values.items() if k in self.last}
        for k, v in values.items():
            if k not in self.last or v > self.last[k]:
                self.last[k] = v

    def totals(self) -> dict[Key, int]:
        out = dict(self.base)
        for k, v in self.last.items():
            out[k] = out.get(k, 0) + v
        return out


class RouterCollector:
    """A prometheus_client collector: a running supervised router's counters, asked for at
    each scrape (see the module's doc)."""

    def __init__(self, sup: Supervisor, name: str, config: str, version: str) -> None:
        self.sup = sup
        self.info = {"version": version, "name": name, "config": config}
        self._slots: dict[int, _Slot] = {}
        self._lock = threading.Lock()  # one scrape at a time updates the slots

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            InfoMetricFamily,
        )

        workers = self._workers_table()
        with self._lock:
            totals = self._per_worker_totals()
        yield InfoMetricFamily("routebricks_router", "The router: software version, name "
                               "(its control socket's) and configuration.", value=self.info)
        up = GaugeMetricFamily("routebricks_worker_up", "Whether the worker process runs "
                               "(1) or is starting, done or dead (0).", labels=["worker"])
        restarts = CounterMetricFamily("routebricks_worker_restarts", "Times the worker was "
                                       "restarted after it died or hung.", labels=["worker"])
        for wid, (state, n) in sorted(workers.items()):
            up.add_metric([str(wid)], 1.0 if state == "running" else 0.0)
            restarts.add_metric([str(wid)], n)
        yield up
        yield restarts

        labels = ["element", "class", "worker"]
        families = {
            "packets": CounterMetricFamily(
                "routebricks_element_packets", "Packets the element handled (pushed to it, "
                "pulled from it, or sent by a device source).", labels=labels),
            "calls": CounterMetricFamily(
                "routebricks_element_calls", "Batches the element handled (push and pull "
                "calls with packets).", labels=labels),
            "self_ns": CounterMetricFamily(
                "routebricks_element_self_seconds", "Time spent in the element's own code "
                "(its calls minus the elements they called).", labels=labels),
            "drops": CounterMetricFamily(
                "routebricks_element_drops", "Packets the element dropped, by reason.",
                labels=[*labels, "reason"]),
        }
        cost = GaugeMetricFamily("routebricks_element_self_seconds_per_packet", "The "
                                 "element's own time per packet over the worker's lifetime "
                                 "(top's ns/pkt).", labels=labels)
        ring = CounterMetricFamily("routebricks_ring_drops", "Packets a device's receive "
                                   "ring lost (also among the element's drops).",
                                   labels=[*labels, "device", "reason"])
        rings = self._ring_reasons()
        for wid, values in sorted(totals.items()):
            w = str(wid)
            for (f, e, c, why), v in sorted(values.items()):
                if f == "drops":
                    families[f].add_metric([e, c, w, why], v)
                    devices = rings.get((e, c), {}).get(why)
                    if devices is not None:
                        ring.add_metric([e, c, w, devices, why], v)
                elif f == "self_ns":
                    families[f].add_metric([e, c, w], v / 1e9)
                    packets = values.get(("packets", e, c, ""), 0)
                    if packets:
                        cost.add_metric([e, c, w], v / 1e9 / packets)
                else:
                    families[f].add_metric([e, c, w], v)
        yield from families.values()
        yield cost
        yield ring

    def _workers_table(self) -> dict[int, tuple[str, int]]:
        """worker -> (state, restarts), from the supervisor's ``workers`` handler."""
        reply = self.sup.ask("read", "workers")
        out: dict[int, tuple[str, int]] = {}
        if not reply.ok:
            return out
        for line in reply.text.splitlines():
            m = re.match(r"worker (\d+)\t.*\t(\w+)\trestarts (\d+)$", line)
            if m:
                out[int(m[1])] = (m[2], int(m[3]))
        return out

    def _per_worker_totals(self) -> dict[int, dict[Key, int]]:
        """Each worker slot's counters: fresh from every worker if all answered in time,
        else what the supervisor has of them."""
        workers = list(self.sup.workers)
        fresh = self._ask_each(workers)
        for wid, w in enumerate(workers):
            slot = self._slots.get(wid)
            if slot is None:
                slot = self._slots[wid] = _Slot(w)
            elif slot.worker is not w:  # restarted since the last scrape
                old = slot.worker
                slot.retire(_values(old.final_stats or old.last_stats or []))
                slot.worker = w
            if wid in fresh:
                slot.update(_values(fresh[wid]), fresh=True)
            else:
                rows = w.final_stats or w.last_stats
                if rows:
                    slot.update(_values(rows), fresh=False)
        return {wid: slot.totals() for wid, slot in self._slots.items()}

    def _ask_each(self, workers: list[Any]) -> dict[int, list[dict[str, Any]]]:
        """Every running worker's ``stats`` rows by worker number (answered between two of
        its batches); empty if one did not answer in time or the workers changed."""
        # The supervisor numbers the answers in the order of its running workers: they
        # must be the same before and after.
        running = [w for w in workers if w.alive and w.ready]
        reply = self.sup.ask("read_each", "stats")
        if not reply.ok:
            return {}
        answers = reply.text.splitlines()
        after = [w for w in self.sup.workers if w.alive and w.ready]
        if len(answers) != len(running) or len(after) != len(running) or any(
                a is not b for a, b in zip(running, after, strict=True)):
            return {}
        out: dict[int, list[dict[str, Any]]] = {}
        for w, line in zip(running, answers, strict=True):
            _, sep, text = line.partition(": ")
            try:
                rows = json.loads(text) if sep else None
            except ValueError:
                rows = None
            if not isinstance(rows, list):
                return {}
            out[w.wid] = rows
        return out

    def _ring_reasons(self) -> dict[tuple[str, str], dict[str, str]]:
        """(element, class) -> {ring drop reason: devices} of the elements whose class
        declares ``RING_DROPS``."""
        out: dict[tuple[str, str], dict[str, str]] = {}
        for name, e in list(self.sup.template.elements.items()):
            reasons = getattr(type(e), "RING_DROPS", ())
            if reasons:
                devices = ",".join(e.devices_read())
                out[(name, type(e).__name__)] = dict.fromkeys(reasons, devices)
        return out


# ---------------------------------------------------------------------- the server
class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape waiting on a worker never holds up the exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass  # no line on stderr per scrape


def _routes(metrics: Callable[..., Any]) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"routebricks: the metrics are at /metrics\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: the metrics are at /metrics\n"]

    return app


class MetricsServer:
    """Serves ``collector`` at ``http://host:port/metrics`` on a thread of its own."""

    def __init__(self, host: str, port: int, collector: RouterCollector) -> None:
        from prometheus_client import CollectorRegistry, make_wsgi_app

        registry = CollectorRegistry()
        registry.register(collector)  # type: ignore[arg-type]
        cls = _Server6 if _family(host) == socket.AF_INET6 else _Server
        try:
            self.httpd = make_server(host, port, _routes(make_wsgi_app(registry)),
                                     server_class=cls, handler_class=_QuietHandler)
        except OSError as e:
            raise _bind_error(host, port, e) from None
        self.url = (f"http://[{host}]:{port}/metrics" if ":" in host
                    else f"http://{host}:{port}/metrics")
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics",
                                       kwargs={"poll_interval": 0.2}, daemon=True)

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def close(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
        with contextlib.suppress(OSError):
            self.httpd.server_close()
