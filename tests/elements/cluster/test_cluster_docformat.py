"""The cluster elements document themselves in the project's docstring format, and the
command prints it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from routebricks.engine.element import REGISTRY
from routebricks.engine.registry import get_class, load_library

SECTIONS = ["Ports:", "Arguments:", "Behaviour:", "Handlers:", "Example:"]
NAMES = ["ClusterEncap", "DirectVLB", "ClusterSwitch", "ClusterDecap", "BFD", "NflyVLB",
         "NflySwitch"]
GENERIC = {"name", "class", "config", "ports", "handlers", "drops"}


def test_the_group_is_exactly_these():
    load_library()
    assert sorted(n for n, c in REGISTRY.items() if c.GROUP == "cluster") == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_docstring_format(name):
    cls = get_class(name)
    assert cls is not None and cls.GROUP == "cluster"
    doc = cls.doc()
    lines = doc.splitlines()
    assert lines[0].endswith(".") and lines[1] == ""
    heads = [h + ":" for h in re.findall(
        r"^(Ports|Arguments|Behaviour|Handlers|Example|See also):", doc, re.M)]
    assert heads[: len(SECTIONS)] == SECTIONS and heads[len(SECTIONS):] in ([], ["See also:"])
    handlers = doc.split("Handlers:")[1].split("Example:")[0]
    for h in cls.HANDLERS.values():
        assert h.doc, f"{name}.{h.name} has no description"
        if h.name not in GENERIC:
            assert re.search(rf"\b{h.name} \((read|write)", handlers), h.name
    arguments = doc.split("Arguments:")[1].split("Behaviour:")[0]
    for arg in cls.ARGS:
        assert re.search(rf"^\s+{arg.name} \(", arguments, re.M), arg.name


def test_elements_command_prints_it():
    out = subprocess.run([sys.executable, "-m", "routebricks.cli", "elements", "DirectVLB"],
                         capture_output=True, text=True, check=True).stdout
    assert "Direct VLB with" in out and "FLOWLETS" in out
    listing = subprocess.run([sys.executable, "-m", "routebricks.cli", "elements"],
                             capture_output=True, text=True, check=True).stdout
    assert "cluster" in listing and "ClusterSwitch" in listing
