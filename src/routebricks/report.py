"""Human-readable reports: the end-of-run summary and element documentation."""

from __future__ import annotations

from typing import TextIO

from routebricks.engine.element import Element
from routebricks.engine.router import Router


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


def render_stats(router: Router, reason: str, *, detailed: bool, file: TextIO) -> None:
    elapsed = router.elapsed
    file.write(f"routebricks: stopped ({reason}) after {elapsed:.3f} s\n")
    rows = []
    for e in router.elements.values():
        count = ""
        if "count" in e.HANDLERS and e.HANDLERS["count"].read is not None:
            count = e.read("count")
        drops = sum(e.drops.values())
        if detailed:
            per_call = e.packets / e.calls if e.calls else 0.0
            ns = getattr(e, "self_ns", 0) / e.packets if e.packets else 0.0
            rows.append(
                (
                    e.name,
                    type(e).__name__,
                    str(e.calls),
                    str(e.packets),
                    f"{per_call:.1f}",
                    f"{ns:.1f}",
                    count,
                    str(drops) if drops else "",
                )
            )
        elif count or drops:
            rows.append((e.name, type(e).__name__, count, str(drops) if drops else ""))
    head = (
        ("element", "class", "calls", "packets", "pkts/call", "ns/pkt", "count", "drops")
        if detailed
        else ("element", "class", "count", "drops")
    )
    if rows:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        file.write(
            "  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip() + "\n"
        )
        for r in rows:
            file.write(
                "  "
                + "  ".join(
                    c.ljust(w) if i < 2 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                ).rstrip()
                + "\n"
            )
    for e in router.elements.values():
        for why, n in sorted(e.drops.items()):
            file.write(f"  drop: {e.name} ({type(e).__name__}): {n} {why}\n")
    if detailed and elapsed > 0:
        sent = sum(int(e.read("count")) for e in router.sources if "count" in e.HANDLERS)
        file.write(f"  sources sent {sent} packets: {sent / elapsed / 1e6:.3f} Mpps\n")
