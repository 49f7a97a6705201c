"""Human-readable reports: the end-of-run summary and element documentation."""

from __future__ import annotations

from typing import Any, TextIO

from routebricks.engine.element import Element


def signature(cls: type[Element]) -> str:
    """Click-style synopsis from the declared arguments: ``FromDump(FILENAME, keywords ...)``."""
    pos = [a for a in cls.ARGS if a.positional]
    kw = [a for a in cls.ARGS if not a.positional]
    parts = []
    for i, a in enumerate(pos):
        parts.append(a.name if a.required else f"[{a.name}]" if i == 0 else f"[, {a.name}]")
    head = ", ".join(p for p in parts if not p.startswith("[,")) + "".join(
        p for p in parts if p.startswith("[,")
    )
    if cls.REST:
        head = (head + ", " if head else "") + "ARG..."
    if kw:
        head = (head + ", " if head else "") + "keywords " + ", ".join(a.name for a in kw)
    return f"{cls.__name__}({head})"


def element_doc(cls: type[Element]) -> str:
    lines = [
        f"{signature(cls)}    [{cls.GROUP}]",
        f"ports {cls.port_count}, processing {cls.processing!r}",
        "",
        cls.doc(),
    ]
    return "\n".join(lines)


def render_stats(rows: list[dict[str, Any]], reason: str, elapsed: float, *, detailed: bool,
                 file: TextIO, workers: int = 1) -> None:
    """The end-of-run report: why the run stopped, each element's count and drops (with
    ``detailed``, VPP-style runtime figures: calls, packets per call, time per packet)."""
    on = f" on {workers} workers" if workers > 1 else ""
    file.write(f"routebricks: stopped ({reason}) after {elapsed:.3f} s{on}\n")
    table = []
    for r in rows:
        count = "" if r.get("count") is None else str(r["count"])
        drops = str(r["drops"]) if r["drops"] else ""
        if detailed:
            per_call = r["packets"] / r["calls"] if r["calls"] else 0.0
            table.append((r["element"], r["class"], str(r["calls"]), str(r["packets"]),
                          f"{per_call:.1f}", f"{r['ns_per_packet']:.1f}", count, drops))
        elif count or drops:
            table.append((r["element"], r["class"], count, drops))
    head = (("element", "class", "calls", "packets", "pkts/call", "ns/pkt", "count", "drops")
            if detailed else ("element", "class", "count", "drops"))
    if table:
        widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
        file.write("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
                   .rstrip() + "\n")
        for t in table:
            file.write("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                        for i, (c, w) in enumerate(zip(t, widths, strict=True)))
                       .rstrip() + "\n")
    for r in rows:
        for why, n in sorted(r["drop_reasons"].items()):
            file.write(f"  drop: {r['element']} ({r['class']}): {n} {why}\n")
    if detailed and elapsed > 0:
        sent = sum(r.get("count") or 0 for r in rows if r.get("source"))
        file.write(f"  sources sent {sent} packets: {sent / elapsed / 1e6:.3f} Mpps\n")
