"""The IP and ICMP elements document themselves in the project's docstring format."""

from __future__ import annotations

import re

import pytest

from routebricks.engine.registry import get_class

SECTIONS = ["Ports:", "Arguments:", "Behaviour:", "Handlers:", "Example:"]
NAMES = {
    "CheckIPHeader": "ip", "MarkIPHeader": "ip", "GetIPAddress": "ip", "SetIPAddress": "ip",
    "DecIPTTL": "ip", "FixIPSrc": "ip", "IPGWOptions": "ip", "IPFragmenter": "ip",
    "DropBroadcasts": "standard", "PaintTee": "standard", "ICMPError": "icmp",
    "ICMPPingResponder": "icmp",
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_docstring_format(name):
    cls = get_class(name)
    assert cls is not None and NAMES[name] == cls.GROUP
    doc = cls.doc()
    lines = doc.splitlines()
    assert lines[0].endswith(".") and lines[1] == ""
    heads = [h + ":" for h in re.findall(
        r"^(Ports|Arguments|Behaviour|Handlers|Example|See also):", doc, re.M)]
    assert heads[: len(SECTIONS)] == SECTIONS and heads[len(SECTIONS):] in ([], ["See also:"])
    handlers = doc.split("Handlers:")[1].split("Example:")[0]
    for h in cls.HANDLERS.values():
        assert h.doc, f"{name}.{h.name} has no description"
        if h.name not in {"name", "class", "config", "ports", "handlers", "drops"}:
            assert h.name in handlers
    for arg in cls.ARGS:
        assert arg.name in doc.split("Arguments:")[1].split("Behaviour:")[0]
