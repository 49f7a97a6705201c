"""The element registry: the library's element classes, plus users' own.

Element classes register themselves when their module is imported (see
``Element.__init_subclass__``). The library is imported lazily, all at once, the first time a
class is looked up; users' elements come in through ``require(python "file.py")`` or
``require(package "module")`` in a configuration, or ``--load`` on the command line.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

from routebricks.engine.element import REGISTRY, Element
from routebricks.engine.graph import Requirement
from routebricks.errors import ConfigError

_loaded = False
KNOWN_FEATURES = {"userlevel", "routebricks", "numpy"}


def load_library() -> None:
    """Import every module under ``routebricks.elements`` (each registers its classes)."""
    global _loaded
    if _loaded:
        return
    import routebricks.elements as pkg

    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
    _loaded = True


def get_class(name: str) -> type[Element] | None:
    load_library()
    return REGISTRY.get(name)


def class_exists(name: str) -> bool:
    return get_class(name) is not None


def class_names() -> list[str]:
    load_library()
    return sorted(REGISTRY)


def load_python_file(path: str | Path) -> None:
    """Import a Python file of user elements (their classes register on import)."""
    p = Path(path).resolve()
    if not p.is_file():
        raise ConfigError(f"cannot load elements from {str(path)!r}: no such file")
    name = "routebricks_user_" + p.stem.replace("-", "_")
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(p):
        return
    spec = importlib.util.spec_from_file_location(name, p)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)


def make_requirement_loader(base_dir: str | Path | None):  # noqa: ANN201
    """A callback for the parser that satisfies ``require(...)`` statements."""

    def load(r: Requirement) -> None:
        if r.kind == "python":
            p = Path(r.value)
            if not p.is_absolute() and base_dir is not None:
                p = Path(base_dir) / p
            try:
                load_python_file(p)
            except ConfigError as e:
                raise ConfigError(
                    e.message, r.pos, "the path is relative to the configuration file"
                ) from None
        elif r.kind == "package":
            try:
                importlib.import_module(r.value)
            except ImportError as e:
                raise ConfigError(
                    f"cannot load package {r.value!r}: {e}",
                    r.pos,
                    'install it, or use require(python "file.py")',
                ) from None
        elif r.kind == "feature":
            if r.value not in KNOWN_FEATURES:
                raise ConfigError(
                    f"unknown requirement {r.value!r}",
                    r.pos,
                    "routebricks provides: "
                    + ", ".join(sorted(KNOWN_FEATURES))
                    + '; load elements with require(python "file.py")',
                )
        else:
            raise ConfigError(
                f"unknown requirement kind {r.kind!r}",
                r.pos,
                "use require(package NAME) or require(python FILE)",
            )

    return load
