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
from routebricks.errors import ConfigError, Position, shown

_loaded = False
#: Features a configuration may require(). compact_config is Click's hint to keep the
#: configuration's strings compact in memory: nothing to do here, accepted as Click does.
KNOWN_FEATURES = {"userlevel", "routebricks", "numpy", "compact_config"}


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


def load_python_file(path: str | Path, loaded_by: str = "--load", shown: str | None = None
                     ) -> None:
    """Import a Python file of user elements (their classes register on import).

    A file that does not exist, does not compile or raises while it runs is a ConfigError
    at its own line (``loaded_by`` says what asked for it, ``shown`` is the name the user
    gave), not a traceback."""
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
    try:
        spec.loader.exec_module(mod)
    except (Exception, SystemExit) as e:
        del sys.modules[name]  # a later load tries again instead of finding half a module
        raise module_error(e, shown or str(path), loaded_by, str(p)) from None


def module_error(e: BaseException, what: str, loaded_by: str, where: str | None = None
                 ) -> ConfigError:
    """A ConfigError for a user module that failed to load, at the module's line that
    failed: the syntax error's place, or the innermost traceback frame in ``where`` (the
    module's file, or its package's directory)."""
    hint = f"loaded by {loaded_by}"
    if isinstance(e, SyntaxError) and e.filename:
        src = (e.text or "").rstrip("\n")
        return ConfigError(f"{e.msg} (in Python module {what!r})",
                           Position(e.filename, e.lineno or 1, max(e.offset or 1, 1)), hint,
                           src or None)
    text = str(e)
    if len(text) > 200:
        text = text[:200] + "..."
    msg = f"loading Python module {what!r} failed: {type(e).__name__}" + (
        f": {text}" if text else "")
    frame = _innermost_frame(e, where)
    if frame is None:
        return ConfigError(msg, hint=hint)
    filename, line, src = frame
    column = len(src) - len(src.lstrip()) + 1
    return ConfigError(msg, Position(filename, line, column), hint, src.rstrip("\n"))


def _innermost_frame(e: BaseException, where: str | None) -> tuple[str, int, str] | None:
    """File, line and text of the innermost traceback frame in ``where`` (a file, or a
    directory of them); with no ``where``, in no file of routebricks or of Python's import
    machinery."""
    import linecache
    import traceback

    ours = str(Path(__file__).resolve().parents[1])  # the routebricks package
    found = None
    for fs in traceback.extract_tb(e.__traceback__):
        name = fs.filename
        mine = (name == where or name.startswith(where.rstrip("/") + "/")) if where else not (
            name.startswith("<") or name.startswith(ours))
        if mine and fs.lineno is not None:
            found = fs
    if found is None or found.lineno is None:
        return None
    return found.filename, found.lineno, linecache.getline(found.filename, found.lineno)


def _package_dir(name: str) -> str | None:
    """The directory (or file) a package's modules come from, if it can be found."""
    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    return str(origin.parent if origin.name == "__init__.py" else origin)


def make_requirement_loader(base_dir: str | Path | None):  # noqa: ANN201
    """A callback for the parser that satisfies ``require(...)`` statements."""

    def load(r: Requirement) -> None:
        if r.kind == "python":
            p = Path(r.value)
            if not p.is_absolute() and base_dir is not None:
                p = Path(base_dir) / p
            try:
                found = p.is_file()
            except OSError as e:  # a name too long, say: is_file only hides ENOENT and kin
                raise ConfigError(
                    f"cannot load elements from {shown(r.value)}: {e.strerror}", r.pos,
                    "the path is relative to the configuration file",
                ) from None
            if not found:
                raise ConfigError(
                    f"cannot load elements from {r.value!r}: no such file", r.pos,
                    "the path is relative to the configuration file",
                )
            load_python_file(p, f"require(python ...) at {r.pos}", r.value)
        elif r.kind == "package":
            try:
                importlib.import_module(r.value)
            except ImportError as e:
                if e.name is not None and (r.value + ".").startswith(e.name + "."):
                    raise ConfigError(
                        f"cannot load package {r.value!r}: {e}",
                        r.pos,
                        'install it, or use require(python "file.py")',
                    ) from None
                raise module_error(e, r.value, f"require(package ...) at {r.pos}",
                                   _package_dir(r.value)) from None
            except (Exception, SystemExit) as e:
                raise module_error(e, r.value, f"require(package ...) at {r.pos}",
                                   _package_dir(r.value)) from None
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
