"""Every element in the library documents itself in the one format that
`routebricks elements NAME` prints."""

from __future__ import annotations

import pytest

from routebricks.engine.registry import class_names, get_class

SECTIONS = ("Ports:", "Arguments:", "Behaviour:", "Handlers:", "Example:")


@pytest.mark.parametrize("name", class_names())
def test_docstring_has_every_section(name: str) -> None:
    cls = get_class(name)
    assert cls is not None
    doc = cls.doc()
    assert doc.split("\n")[0].strip().endswith("."), f"{name}: first line is a summary"
    missing = [s for s in SECTIONS if s not in doc]
    assert not missing, f"{name} docstring lacks {missing}"
    positions = [doc.index(s) for s in SECTIONS]
    assert positions == sorted(positions), f"{name}: sections out of order"


@pytest.mark.parametrize("name", class_names())
def test_declared_handlers_are_documented(name: str) -> None:
    cls = get_class(name)
    assert cls is not None
    handlers_text = cls.doc().split("Handlers:")[1].split("Example:")[0]
    generic = {"name", "class", "config", "ports", "handlers", "drops"}
    for h in set(cls.HANDLERS) - generic:
        assert h in handlers_text, f"{name}: handler {h!r} is not in its docstring"
