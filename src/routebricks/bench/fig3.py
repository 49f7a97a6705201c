"""Fig. 3: servers needed for an N-port router, from the planner (routebricks plan)."""

from __future__ import annotations

from routebricks.bench import plots
from routebricks.bench.core import Context, Ratio, Result, experiment

PAPER = """
§3.3, Fig. 3: the number of servers for an N-port router, R = 10 Gbit/s per port, for
three server configurations -- current servers (one port each, 5 NIC slots), more NICs
(20 slots), faster servers (two ports each, 20 slots) -- and for the rejected switched
cluster (48-port Arista switches priced as servers). A full mesh serves up to N = 32, 128
and 2048 ports respectively; beyond it a k-ary n-fly adds intermediate servers: "even with
current servers, we need 2 intermediate servers per port to provide N = 1024 external
ports". The switched cluster costs more at every N.
"""

LABELS = {"current": "current servers", "more-nics": "more NICs",
          "faster": "faster servers", "switched": "48-port switches"}


@experiment("fig3", "Fig. 3 — servers vs ports (the planner)", paper=PAPER,
            paper_ratio="3 servers per port at N = 1024 with current servers (1 io + 2 "
            "intermediate); a mesh up to N = 32 / 128 / 2048", seconds=(2, 2))
def run(ctx: Context) -> Result:
    from routebricks.cluster.plan import (
        FIG3_PORTS,
        SERVER_CONFIGS,
        G,
        figure3,
        mesh_limit,
        ports_per_server,
    )

    ctx.total(2)
    ctx.step("planning N = 4 .. 2048 for the three configurations and the switched cluster")
    rate = 10 * G
    curves = figure3(rate)
    limits = {}
    for name, cfg in SERVER_CONFIGS.items():
        s = ports_per_server(cfg.processing, rate)
        limits[name] = mesh_limit(rate, s, cfg.nics, cfg.nic_kinds)
    ctx.step("plotting")
    png = plots.lines(ctx.plot_path("fig3.png"), "Servers for an N-port router, R = 10 Gbit/s "
                      "per port (routebricks plan)", list(FIG3_PORTS),
                      {LABELS[k]: v for k, v in curves.items()}, "external ports N",
                      "servers (switched: server-equivalents)", logx=True, logy=True)
    per_port = curves["current"][FIG3_PORTS.index(1024)] / 1024
    head = "| N | " + " | ".join(LABELS[k] for k in curves) + " |"
    rows = [head, "|---:|" + "---:|" * len(curves)]
    for i, n in enumerate(FIG3_PORTS):
        rows.append(f"| {n} | " + " | ".join(str(v[i]) for v in curves.values()) + " |")
    mesh = ", ".join(f"{LABELS[k]} {v}" for k, v in limits.items())
    body = "\n".join(rows) + f"\n\nLargest full mesh (external ports): {mesh}."
    cheaper = [n for i, n in enumerate(FIG3_PORTS) if curves["switched"][i] < curves["current"][i]]
    ratios = [
        Ratio("servers per port, N = 1024, current servers", 3.0, per_port,
              "1 io server + 2 intermediate servers per port"),
        Ratio("largest full mesh, current servers (ports)", 32, limits["current"], unit=""),
        Ratio("largest full mesh, more NICs (ports)", 128, limits["more-nics"], unit=""),
        Ratio("largest full mesh, faster servers (ports)", 2048, limits["faster"], unit=""),
    ]
    notes = ["The switched cluster costs more than current servers at every N, as in the paper."
             if not cheaper else "The switched cluster (server-equivalents) costs less than "
             f"current servers at N = {', '.join(map(str, cheaper))}; the paper finds it "
             "more expensive at every N."]
    if limits["faster"] < 2048:
        cfg = SERVER_CONFIGS["faster"]
        most = cfg.nics * max(k.ports for k in cfg.nic_kinds)
        notes.append(f"The planner's full mesh of faster servers stops at {limits['faster']} "
                     f"ports, not the paper's 2048: {cfg.nics} NIC slots of at most "
                     f"{max(k.ports for k in cfg.nic_kinds)} ports give a server at most "
                     f"{most} ports, and a mesh of 1024 two-port servers needs 1023 internal "
                     "links on each.")
    return Result(
        summary=f"{per_port:.0f} servers per port at N = 1024 (paper 3); mesh up to {mesh}",
        body=body, ratios=ratios, plots=[png] if png else [],
        data={"ports": list(FIG3_PORTS), "servers": curves, "mesh_limit": limits},
        notes=notes + ([] if png else [plots.MISSING]))
