"""Fig. 8: the loss-free forwarding rate vs packet size and application, on veth, with the
Linux kernel forwarding between the same links beside routebricks."""

from __future__ import annotations

import time
from typing import Any

from routebricks.bench import plots
from routebricks.bench import topology as vt
from routebricks.bench.core import (
    Context,
    Ratio,
    Result,
    data_file,
    experiment,
    need_root,
    need_tool,
)
from routebricks.bench.report import fmt_ratio
from routebricks.bench.veth import Config, LossFree, Outcome, RouterProc, Settings, testbed

PAPER = """
§5.2, Fig. 8: the maximum loss-free forwarding rate of one server (8 cores, 4 x 10G ports).
Minimal forwarding: 9.7 Gbit/s (18.96 Mpps) with 64 B packets; 24.6 Gbit/s -- all the NICs
could carry -- with larger packets and the Abilene trace. IP routing (a 256K-entry table,
random destinations): 6.35 Gbit/s with 64 B, 24.6 with Abilene. IPsec (AES-128): 1.4 Gbit/s
with 64 B, 4.45 with Abilene.
"""

KP = 256  # the best loss-free setting on veth (README: Real interfaces)
IPSEC_ALG = "aes128cbc-sha1"
PAPER_GBPS = {"minimal": {64: 9.7, "imix": 24.6}, "iproute": {64: 6.35, "imix": 24.6},
              "ipsec": {64: 1.4, "imix": 4.45}}
KIND_NAMES = {"minimal": "minimal forwarding", "iproute": "IP routing",
              "ipsec": "IPsec (AES-128-CBC + HMAC-SHA1)"}


def gbps(mpps: float | None, size: int | str) -> float | None:
    """Frame bits (FCS included), as the paper counts them."""
    from routebricks.traffic.frames import mean_frame_size

    return None if mpps is None else mpps * mean_frame_size(size) * 8 / 1e3


def _rows(ctx: Context, table: bool) -> tuple[list[Config], list[Config]]:
    sizes: list[int | str] = ctx.pick([64, "imix"], [64, 128, 256, 512, 1024, "imix"])
    app_sizes: list[int | str] = ctx.pick([64], sizes)
    kernel = [Config("kernel", "small", rps=True, size=s) for s in sizes]
    if table and not ctx.quick:
        kernel += [Config("kernel", "270K", rps=True, size=s) for s in app_sizes]
    ours = [Config("minimal", "-", 1, KP, "V3", size=s) for s in sizes]
    if table:
        ours += [Config("iproute", "270K", 1, KP, "V3", size=s) for s in app_sizes]
    ours += [Config("ipsec", "-", 1, KP, "V3", size=s) for s in app_sizes]
    ours += [Config("minimal", "-", w, KP, "V3", size=64) for w in ctx.workers if w > 1]
    return kernel, ours


@experiment("fig8", "Fig. 8 — loss-free rate vs packet size and application", paper=PAPER,
            paper_ratio="64 B: IP routing / minimal = 0.65×, IPsec / minimal = 0.14×; "
            "minimal, Abilene / 64 B (Gbit/s) = 2.5× (NIC-bound)", seconds=(70, 600),
            uses_workers=True)
def run(ctx: Context) -> Result:
    from routebricks.bench.ipsecdata import kernel_esp_unavailable
    from routebricks.lookup import load_ipasn

    if ctx.memory_only:
        from routebricks.bench.core import Skip

        raise Skip("needs veth and namespaces (--memory-only)")
    need_root("fig8")
    need_tool("nft", "nftables")
    path = data_file()
    notes: list[str] = []
    kernel_rows, our_rows = _rows(ctx, path is not None)
    ctx.total(3 + len(kernel_rows) + len(our_rows) + (path is not None))
    settings = Settings(trial_seconds=ctx.pick(0.4, 0.8), repeat=ctx.pick(1, 2),
                        precision=ctx.pick(0.12, 0.05), max_trials=ctx.pick(8, 16))
    lf = LossFree(settings, ctx.tmp, log=ctx.log)
    route_file = None
    net = length = None
    if path is None:
        notes.append("IP routing not measured: the 2008 table is missing (set "
                     "ROUTEBRICKS_DATA to its folder)")
    else:
        ctx.step("loading the 2008 table")
        routes = load_ipasn(path, nports=1)
        net, length = routes.net, routes.length
        lf.dst = vt.destinations(net, length, 65536)
        route_file = ctx.tmp / "routes.txt"
        vt.write_route_file(route_file, net, length)
    results: list[Outcome] = []

    def done(o: Outcome) -> None:
        results.append(o)
        c = o.config
        ctx.log(f"{c.name} {c.table} {c.size} {c.cores}: {o.text()} Mpps; limit {o.limit} "
                f"[{o.trials} trials, {o.seconds:.0f} s]")

    cpus = ctx.cores
    ctx.step("the Linux kernel's testbed")
    with testbed(vt.three_node_spec(kernel=True)) as tb:
        vt.kernel_router_setup(tb)
        rps = vt.set_rps(tb.ns("r"), "eth0", {cpus[0]})
        if not rps:
            notes.append("RPS not available: the kernel forwards in the sender's softirq")
        with lf.agents(tb) as (gen, sink):
            for cfg in kernel_rows:
                cfg.rps = rps
                if cfg.table == "270K" and not any(o.config.table == "270K" for o in results):
                    ctx.step("installing 270K routes in the kernel's FIB")
                    t = time.monotonic()
                    n = vt.install_kernel_routes(tb.ns("r"), net, length, vt.RECEIVER_IP)
                    ctx.log(f"{n:,} routes installed in {time.monotonic() - t:.1f} s")
                ctx.step(f"Linux kernel, {cfg.table} table, {cfg.size} B")
                done(lf.measure_steady(cfg, gen, sink, vt.ROUTER_MAC0))
    ctx.step("routebricks' testbed")
    with testbed(vt.three_node_spec(kernel=False, mtu=9000)) as tb, \
            lf.agents(tb) as (gen, sink):
        for i, cfg in enumerate(our_rows):
            ctx.step(f"{cfg.name}, {cfg.size} B, {cfg.workers} worker(s)")
            text = vt.click_config(cfg.kind, cfg.method, route_file, ipsec_alg=IPSEC_ALG)
            router = None
            try:
                router = RouterProc(tb.ns("r"), text, cfg.workers, cfg.kp, ctx.tmp, f"rb{i}")
                o = lf.measure_steady(cfg, gen, sink, vt.ROUTER_MAC0, router)
                o.profile = router.profile()
                done(o)
            except (RuntimeError, OSError) as e:  # a row that failed, not the end of the run
                ctx.log(f"  failed: {e}")
                done(Outcome(cfg, limit=f"error: {str(e).splitlines()[0][:80]}"))
            finally:
                if router is not None:
                    router.stop()
    ctx.step("plotting")
    why = kernel_esp_unavailable(IPSEC_ALG)
    notes.append("The Linux kernel's IPsec is not measured here: "
                 + (why if why else "this kernel has ESP; benchmarks/ipsec.py measures it"))
    return _result(ctx, results, notes, settings)


def _find(results: list[Outcome], **kw: Any) -> Outcome | None:
    for o in results:
        if all(getattr(o.config, k) == v for k, v in kw.items()):
            return o
    return None


def _ratio(a: Outcome | None, b: Outcome | None) -> float | None:
    if a is None or b is None or not a.mpps or not b.mpps:
        return None
    return a.mpps / b.mpps


def _result(ctx: Context, results: list[Outcome], notes: list[str],
            s: Settings) -> Result:
    mini = _find(results, kind="minimal", size=64, workers=1)
    rtr = _find(results, kind="iproute", size=64)
    esp = _find(results, kind="ipsec", size=64)
    k64 = _find(results, kind="kernel", table="small", size=64)
    k270 = _find(results, kind="kernel", table="270K", size=64)
    mimix = _find(results, kind="minimal", size="imix", workers=1)
    ratios = [Ratio("64 B: IP routing / minimal forwarding", 6.35 / 9.7, _ratio(rtr, mini)),
              Ratio("64 B: IPsec / minimal forwarding", 1.4 / 9.7, _ratio(esp, mini)),
              Ratio("minimal forwarding, Gbit/s: IMIX / 64 B", 24.6 / 9.7,
                    (gbps(mimix.mpps, "imix") / gbps(mini.mpps, 64))
                    if mimix and mini and mimix.mpps and mini.mpps else None,
                    "the paper's is Abilene / 64 B, NIC-bound"),
              Ratio("64 B minimal: routebricks / the Linux kernel", None, _ratio(mini, k64),
                    "kernel on a core of its own (RPS); the paper has no kernel row")]
    if k270 is not None:
        ratios.append(Ratio("64 B IP routing (270K routes): routebricks / the Linux kernel",
                            None, _ratio(rtr, k270)))
    for w in ctx.workers[1:]:
        ratios.append(Ratio(f"64 B minimal: {w} workers / 1", None,
                            _ratio(_find(results, kind="minimal", size=64, workers=w), mini),
                            "a live sender shares the cores"))
    if any(o.sender_limited for o in results):
        notes.append("≥: no loss at the most the sender could offer -- the sender (one core "
                     "of this machine, through veth) is the limit, the router may do more; "
                     "ratios with such a row are lower or upper bounds.")
    notes += [f"Loss-free: loss ≤ {s.tolerance:.1%}, binary search (precision "
              f"{s.precision:.0%}) below the rate an unpaced trial reached; trials of "
              f"{s.trial_seconds:g} s, each failing rate tried {s.repeat}×. Frames carry 256 "
              "flows to destinations drawn over the 2008 table. routebricks runs `routebricks "
              f"run CONFIG --netns r --kp {KP}` (FromDevice METHOD V3, KernelFilter); IPsec's "
              "ESP frames are counted at the receiver as frames without a probe. A row whose "
              "search ended with the sender falling short far below its own maximum (a starved "
              "sender, not the router) is measured once more and the better result kept.",
              "Gbit/s count frame bytes with FCS, as the paper does; IMIX is 7:4:1 of "
              "64/594/1518-byte frames (the paper's Abilene trace is not public here)."]
    rows = ["| router | table | size | workers | Mpps | Gbit/s | limit |",
            "|---|---|---|---:|---:|---:|---|"]
    for o in results:
        c = o.config
        g = gbps(o.mpps, c.size)
        mark = "≥" if o.sender_limited else ""
        mp = "–" if o.mpps is None else f"{mark}{o.mpps:.3f}"
        gb = "–" if g is None else f"{mark}{g:.2f}"
        rows.append(f"| {c.name} | {c.table} | {c.size} | {c.cores} | {mp} | {gb} | "
                    f"{o.limit} |")
    plot = _plot(ctx, results)
    data = {"rows": [{"kind": o.config.kind, "table": o.config.table, "size": o.config.size,
                      "workers": o.config.workers, "kp": o.config.kp, "rps": o.config.rps,
                      "mpps": o.mpps, "gbps": gbps(o.mpps, o.config.size),
                      "sender_limited": o.sender_limited, "sender_max_mpps": o.gen_max_mpps,
                      "limit": o.limit, "trials": o.trials, "seconds": o.seconds,
                      "cpu": o.cpu, "profile_ns": o.profile} for o in results],
            "paper_gbps": PAPER_GBPS, "kp": KP, "ipsec_alg": IPSEC_ALG}

    def v(o: Outcome | None) -> str:
        return o.text() if o else "–"

    summary = (f"64 B Mpps: minimal {v(mini)}, routing {v(rtr)}, IPsec {v(esp)}, kernel "
               f"{v(k64)}; routing/minimal {fmt_ratio(ratios[0].ours)} (paper 0.65×), "
               f"IPsec/minimal {fmt_ratio(ratios[1].ours)} (paper 0.14×)")
    return Result(summary=summary, body="\n".join(rows), ratios=ratios, data=data,
                  plots=[plot] if plot else [], notes=notes + ([] if plot else [plots.MISSING]))


def _plot(ctx: Context, results: list[Outcome]) -> str | None:
    if not plots.available():
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5))
    ax0, ax1 = fig.subplots(1, 2)
    sizes = sorted({o.config.size for o in results if isinstance(o.config.size, int)})
    xs = [*sizes, "imix"] if any(o.config.size == "imix" for o in results) else sizes
    series = {"routebricks minimal": dict(kind="minimal", workers=1),
              "Linux kernel, small table": dict(kind="kernel", table="small"),
              "routebricks IP routing": dict(kind="iproute"),
              "Linux kernel, 270K routes": dict(kind="kernel", table="270K"),
              "routebricks IPsec": dict(kind="ipsec")}
    for (label, kw), marker in zip(series.items(), "osD^v", strict=True):
        pts = [(i, gbps(o.mpps, x)) for i, x in enumerate(xs)
               if (o := _find(results, size=x, **kw)) is not None and o.mpps]
        if pts:
            ax0.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=label,
                     linestyle="--" if "kernel" in label else "-")
    ax0.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax0.set(xlabel="frame size (bytes; imix 7:4:1 of 64/594/1518)",
            ylabel="loss-free rate (Gbit/s)", title="loss-free rate vs size, one veth path")
    ax0.grid(True, alpha=0.3)
    ax0.legend(fontsize=7)
    apps = [("minimal", "small"), ("iproute", "270K"), ("ipsec", None)]
    names = [KIND_NAMES[k] for k, _ in apps]
    ours = [(o.mpps if (o := _find(results, kind=k, size=64, workers=1)) else None)
            for k, _ in apps]
    kern = [(o.mpps if t and (o := _find(results, kind="kernel", table=t, size=64)) else None)
            for _, t in apps]
    for off, vals, label in ((-0.2, ours, "routebricks (1 worker)"), (0.2, kern,
                                                                     "Linux kernel")):
        pts = [(i + off, v) for i, v in enumerate(vals) if v]
        if pts:
            rects = ax1.bar([p[0] for p in pts], [p[1] for p in pts], 0.4, label=label)
            ax1.bar_label(rects, fmt="%.3f", fontsize=7)
    ax1.set_xticks(range(len(apps)), [n.replace(" (", "\n(") for n in names], fontsize=8)
    ax1.set(ylabel="loss-free rate (Mpps)", title="64 B, per application")
    ax1.legend(fontsize=7)
    ax1.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path = ctx.plot_path("fig8.png")
    fig.savefig(path, dpi=100)
    return path.name
