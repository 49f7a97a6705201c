"""The Ethernet elements added here document themselves in the project's docstring format."""

from __future__ import annotations

import re

import pytest

from routebricks.engine.registry import get_class

SECTIONS = ["Ports:", "Arguments:", "Behaviour:", "Handlers:", "Example:"]


@pytest.mark.parametrize("name", ["EtherEncap", "EtherRewrite"])
def test_docstring_format(name):
    cls = get_class(name)
    assert cls is not None and cls.GROUP == "ethernet"
    doc = cls.doc()
    lines = doc.splitlines()
    assert lines[0].endswith(".") and lines[1] == ""
    heads = [h + ":" for h in re.findall(
        r"^(Ports|Arguments|Behaviour|Handlers|Example|See also):", doc, re.M)]
    assert heads[: len(SECTIONS)] == SECTIONS
    assert heads[len(SECTIONS):] in ([], ["See also:"])
    assert all(h.doc for h in cls.HANDLERS.values())
