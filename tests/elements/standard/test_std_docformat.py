"""The standard elements added here document themselves in the project's docstring format."""

from __future__ import annotations

import re

import pytest

from routebricks.engine.registry import get_class

SECTIONS = ["Ports:", "Arguments:", "Behaviour:", "Handlers:", "Example:"]
NAMES = ["RatedSource", "TimedSource", "Queue", "SimpleQueue", "Unqueue", "Tee", "PullTee",
         "Paint", "PaintSwitch", "Strip", "Unstrip", "HashSwitch", "RoundRobinSwitch",
         "RandomSwitch", "Print", "Null", "PushNull", "PullNull", "Idle"]


def check_doc(doc: str) -> None:
    lines = doc.splitlines()
    assert lines[0].strip() and lines[0].endswith("."), "summary line"
    assert lines[1] == "", "blank line after the summary"
    heads = [h + ":" for h in re.findall(
        r"^(Ports|Arguments|Behaviour|Handlers|Example|See also):", doc, re.M)]
    assert heads[: len(SECTIONS)] == SECTIONS
    assert heads[len(SECTIONS):] in ([], ["See also:"])


@pytest.mark.parametrize("name", NAMES)
def test_docstring_format(name):
    cls = get_class(name)
    assert cls is not None and cls.GROUP == "standard"
    check_doc(cls.doc())


def test_checker_accepts_existing_elements():
    for name in ("Counter", "Discard", "Classifier", "InfiniteSource"):
        check_doc(get_class(name).doc())


@pytest.mark.parametrize("name", NAMES)
def test_handler_docs(name):
    cls = get_class(name)
    for h in cls.HANDLERS.values():
        assert h.doc, f"{name}.{h.name} has no description"
