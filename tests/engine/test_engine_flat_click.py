"""The flattened form (-o, flatconfig) writes connections in chains as Click's
Router::unparse_connections does, and parses back to the same graph."""

from __future__ import annotations

from routebricks.engine.router import parse_text


def test_connections_chain_through_port_zero_and_round_trip() -> None:
    text = ("require(compact_config); s :: Idle -> c :: Classifier(12/0800, -) -> a :: Counter "
            "-> Discard; c[1] -> [0] b :: Counter -> Discard; t :: Tee; Idle -> t; t[1] -> a")
    g = parse_text(text, "f.click")
    flat = g.unparse()
    assert "s -> c\n    -> a\n    -> Discard@4;" in flat
    assert "c [1] -> b\n    -> Discard@6;" in flat
    assert "t [1] -> a;" in flat
    again = parse_text(flat, "again.click")
    key = lambda gr: sorted((c.src, c.sport, c.dst, c.dport) for c in gr.connections)  # noqa: E731
    assert key(again) == key(g)
    assert {n: d.class_name for n, d in again.elements.items()} == {
        n: d.class_name for n, d in g.elements.items()}
