"""Flattening: a parsed configuration's statements into a :class:`Graph`, as Click flattens
one. Compound elements are expanded (element ``n`` of compound class ``C`` becomes ``n/inner``
elements; the overload taken is the first whose formals take the arguments and whose ports
fit how the element is connected), variables substituted, and connections through ``input``
and ``output`` spliced.

Every error carries file:line:column, the offending line and a hint.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from routebricks.engine.argtext import split_args, split_keyword, strip_comments, unquote
from routebricks.engine.graph import Connection, ElementDecl, Graph
from routebricks.engine.lexer import Lexer
from routebricks.engine.parser import (
    MAX_NESTING,
    Chain,
    ClassRef,
    Compound,
    Decl,
    Define,
    ElementClass,
    Endpoint,
)
from routebricks.errors import ConfigError, Position


@dataclass
class _Scope:
    prefix: str
    env: dict[str, str]
    classes: dict[str, ClassRef]
    names: dict[str, str] = field(default_factory=dict)  # local name -> flat name
    parent: _Scope | None = None
    count: int = 0  # elements instantiated so far in this scope (for Class@N names)
    #: Ports each element uses in this scope (inputs, outputs), by local name or, for an
    #: anonymous element, by id() of its Ref: chooses among overloaded classes.
    ports: dict[object, tuple[int, int]] = field(default_factory=dict)

    def find_class(self, name: str) -> ClassRef | None:
        s: _Scope | None = self
        while s is not None:
            if name in s.classes:
                return s.classes[name]
            s = s.parent
        return None


_DOLLAR_OR_QUOTE = re.compile(r"[$'\"\\]")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_BRACED = re.compile(r"\s*([A-Za-z0-9_]*)\s*(?:\[\s*(-?[0-9]+)\s*\]\s*)?(-.*)?\Z", re.S)


def expand_variables(text: str, env: dict[str, str], depth: int = 0) -> str:
    """Click's ``cp_expand``: ``$NAME``, ``${NAME}``, ``${NAME[N]}`` (the value's Nth
    space-separated word; N may itself be ``$i``) and ``${NAME-DEFAULT}``, outside single
    quotes. A variable that is not set stays as it is written, as in Click: a Script's
    own variables (``$x``, ``$(add 1 2)``, ``$?``) reach the Script untouched."""
    if "$" not in text or depth > 10:
        return text
    out: list[str] = []
    i, n, quote = 0, len(text), ""
    while i < n:
        m = _DOLLAR_OR_QUOTE.search(text, i)
        if m is None:
            break
        j = m.start()
        c = text[j]
        if c == "\\":
            out.append(text[i : j + 2] if quote == '"' else text[i : j + 1])
            i = j + 2 if quote == '"' else j + 1
            continue
        if c in "'\"":
            quote = c if not quote else ("" if quote == c else quote)
            out.append(text[i : j + 1])
            i = j + 1
            continue
        out.append(text[i:j])
        if quote == "'" or j + 1 >= n:
            out.append("$")
            i = j + 1
            continue
        value, end = _variable(text, j, env, depth)
        if value is None:
            out.append(text[j:end])
        elif quote == '"':
            out.append(value.replace("\\", "\\\\").replace('"', '\\"'))
        else:
            out.append(value)
        i = end
    out.append(text[i:])
    return "".join(out)


def _variable(text: str, j: int, env: dict[str, str], depth: int) -> tuple[str | None, int]:
    """The value of the variable reference at ``text[j]`` (a ``$``), None if unset, and
    where the reference ends."""
    if text[j + 1] == "{":
        close = text.find("}", j + 2)
        if close < 0:
            return None, len(text)
        inner = text[j + 2 : close]
        if "$" in inner:
            inner = expand_variables(inner, env, depth + 1)
        m = _BRACED.match(inner)
        if m is None:
            return None, close + 1
        name, index, default = m.groups()
        value = env.get("$" + name)
        if value is None:
            return (None if default is None else
                    expand_variables(default[1:], env, depth + 1)), close + 1
        value = expand_variables(value, env, depth + 1)
        if index is not None:
            words = value.split()
            k = int(index)
            value = words[k] if 0 <= k < len(words) else ""
        return value, close + 1
    m = _WORD.match(text, j + 1)
    if m is None:
        return None, j + 1
    value = env.get("$" + m.group())
    return (None if value is None else expand_variables(value, env, depth + 1)), m.end()


class Flattener:
    """Expands statements into a flat :class:`Graph`."""

    def __init__(
        self,
        lexers: dict[str, Lexer],
        class_exists: Callable[[str], bool],
        class_names: Callable[[], list[str]],
    ) -> None:
        self.lexers = lexers
        self.class_exists = class_exists
        self.class_names = class_names
        self.graph = Graph()
        self.tunnels: set[str] = set()
        self.decl_pos: dict[str, Position | None] = {}
        self.overrides: dict[str, str] = {}

    def err(self, msg: str, pos: Position | None, hint: str | None = None) -> ConfigError:
        src = None
        if pos is not None and pos.file in self.lexers:
            src = self.lexers[pos.file].source_line(pos)
        return ConfigError(msg, pos, hint, src)

    # -- variables
    def subst(self, text: str, env: dict[str, str], pos: Position | None) -> str:
        return expand_variables(text, env)

    # -- entry
    def flatten(self, body: list[object], defines: dict[str, str] | None = None) -> Graph:
        """Expand ``body``; ``defines`` (``$NAME`` → value, e.g. NAME=value on the command
        line) take precedence over the configuration's own define() statements."""
        self.overrides = {("$" + k.lstrip("$")): v for k, v in (defines or {}).items()}
        scope = _Scope("", dict(self.overrides), {})
        self.expand(body, scope)
        self.splice()
        return self.graph

    def expand(self, body: list[object], scope: _Scope) -> None:
        # Pass 1: classes, defines, declarations (names may be used before they are declared).
        for st in body:
            if isinstance(st, ElementClass):
                c = st.cls.compound
                if c is not None and c.extends:  # "...": what the name meant until now
                    c.previous = scope.find_class(st.name)  # None: a library class
                scope.classes[st.name] = st.cls
            elif isinstance(st, Define):
                for arg in split_args(st.config):
                    m = re.fullmatch(r"(\$[A-Za-z_][A-Za-z0-9_]*)\s*(.*)", arg, re.S)
                    if not m:
                        raise self.err(
                            f"bad definition {arg!r}", st.pos, "write define($NAME value, ...)"
                        )
                    scope.env[m.group(1)] = self.subst(m.group(2).strip(), scope.env, st.pos)
        if not scope.prefix:
            scope.env.update(self.overrides)
        # Names declared anywhere in the scope may be used before their declaration.
        for st in body:
            decls = (
                [st]
                if isinstance(st, Decl)
                else [ep.ref.decl for ep in st.endpoints if ep.ref.decl is not None]
                if isinstance(st, Chain)
                else []
            )
            for d in decls:
                for name, pos in d.names:
                    self.check_name(name, pos, scope, d.override)
                    scope.names[name] = scope.prefix + name
        scope.ports = _port_usage(body)
        # Pass 2, in source order (so anonymous elements are numbered as Click numbers them).
        for st in body:
            if isinstance(st, Decl):
                self.declare(st, scope)
            elif isinstance(st, Chain):
                self.connect_chain(st, scope)

    def check_name(self, name: str, pos: Position, scope: _Scope, override: bool) -> None:
        if name in ("input", "output") and scope.prefix:
            raise self.err(
                f"{name!r} is reserved inside element classes", pos, "choose another element name"
            )
        if name in scope.names and not override:
            first = self.decl_pos.get(scope.prefix + name)
            raise self.err(
                f"redeclaration of element {name!r}",
                pos,
                f"first declared at {first}" if first else None,
            )
        if self.class_exists(name) or scope.find_class(name):
            raise self.err(
                f"element name {name!r} is a class name",
                pos,
                "give the element a name that is not a class",
            )
        flat = scope.prefix + name
        if override and name in scope.names:
            self._remove(flat)
        self.decl_pos[flat] = pos

    def declare(self, d: Decl, scope: _Scope) -> None:
        for name, pos in d.names:
            scope.count += 1
            self.instantiate(
                scope.names[name], d.cls, d.config or "", d.config_pos or pos, scope, pos,
                scope.ports.get(name)
            )

    def _remove(self, flat: str) -> None:
        """Forget an element (and its compound insides) that an override replaces."""
        for k in [k for k in self.graph.elements if k == flat or k.startswith(flat + "/")]:
            del self.graph.elements[k]
        self.tunnels.discard(flat + "/input")
        self.tunnels.discard(flat + "/output")

    def instantiate(
        self, flat: str, cls: ClassRef, config: str, cpos: Position, scope: _Scope, pos: Position,
        ports: tuple[int, int] | None = None,
    ) -> None:
        config = self.subst(strip_comments(config), scope.env, cpos)
        comp: Compound | None = cls.compound
        cname = cls.name
        seen = set()
        while comp is None and cname is not None:
            ref = scope.find_class(cname)
            if ref is None:
                break
            if cname in seen:
                raise self.err(f"element class {cname!r} is defined in terms of itself", cls.pos)
            seen.add(cname)
            comp, cname = ref.compound, ref.name
        if comp is not None:
            self.expand_compound(flat, comp, config, cpos, scope, ports)
            return
        assert cname is not None
        if not self.class_exists(cname):
            close = difflib.get_close_matches(cname, self.class_names(), n=3)
            raise self.err(
                f"unknown element class {cname!r}",
                cls.pos,
                f"did you mean {' or '.join(close)}?"
                if close
                else "see 'routebricks elements' for the library, or "
                'require(python "file.py") for your own elements',
            )
        self.graph.elements[flat] = ElementDecl(flat, cname, config.strip(), pos)

    def expand_compound(
        self, flat: str, comp: Compound, config: str, cpos: Position, scope: _Scope,
        ports: tuple[int, int] | None = None,
    ) -> None:
        if flat.count("/") > MAX_NESTING:
            raise self.err(
                f"element classes nest too deeply (more than {MAX_NESTING} levels; "
                "recursive element class?)",
                comp.pos,
            )
        args = split_args(config)
        # Click's overloads: the first definition whose formals take the arguments and
        # whose ports are the ones the element uses here.
        alternatives, fallback = self._alternatives(comp, scope)
        first_error: tuple[str, str] | None = None
        fitting: list[tuple[Compound, dict[str, str]]] = []
        for alt in alternatives:
            bound = self._bind(alt, args)
            if isinstance(bound, dict):
                fitting.append((alt, bound))
            else:
                first_error = first_error or bound
        used = ports or (0, 0)
        for alt, bound in fitting:
            if len(alternatives) == 1 or _class_ports(alt) == used:
                self._expand_with(flat, alt, {**scope.env, **bound}, scope)
                return
        if fitting and fallback is None:
            name = comp.name or "{...}"
            raise self.err(f"no match for '{name}{_ports_text(used)}'", cpos,
                           "candidates are: " + "; ".join(
                               f"{name}{_ports_text(_class_ports(a))}" for a, _ in fitting))
        if fallback is not None:  # "...": the class this one extends is a library class
            self.graph.elements[flat] = ElementDecl(flat, fallback, config.strip(), cpos)
            return
        assert first_error is not None
        if len(alternatives) > 1:
            raise self.err(
                f"no definition of element class {comp.name or '{...}'} takes "
                f"{len(args)} argument(s)", cpos,
                "its definitions take: " + "; ".join(
                    ", ".join(v for _, v in a.formals) or "nothing" for a in alternatives))
        raise self.err(first_error[0], cpos, first_error[1])

    def _alternatives(self, comp: Compound,
                      scope: _Scope) -> tuple[list[Compound], str | None]:
        """The definitions to try, in order (``||`` overloads, then what ``...`` extends),
        and a library class to fall back on."""
        out: list[Compound] = []
        seen: set[int] = set()
        c: Compound | None = comp
        while c is not None and id(c) not in seen:
            seen.add(id(c))
            out += [c, *c.overloads]
            if not c.extends:
                break
            prev = c.previous
            if prev is None:
                return out, c.name  # it extends the library class of that name
            while prev.compound is None and prev.name is not None:
                ref = scope.find_class(prev.name)
                if ref is None or ref is prev:
                    return out, prev.name  # a synonym of a library class
                prev = ref
            c = prev.compound
        return out, None

    def _bind(self, comp: Compound, args: list[str]) -> dict[str, str] | tuple[str, str]:
        """The formals' values for ``args``, or (message, hint) if they do not fit."""
        env: dict[str, str] = {}
        positional = [v for k, v in comp.formals if k is None]
        keywords = {k: v for k, v in comp.formals if k is not None and k != "__REST__"}
        rest_var = next((v for k, v in comp.formals if k == "__REST__"), None)
        rest: list[str] = []
        pi = 0
        for a in args:
            kw = split_keyword(a)
            if kw and kw[0] in keywords:
                env[keywords[kw[0]]] = kw[1]
                continue
            if pi >= len(positional):
                if rest_var is not None:  # Click's __REST__ formal takes what is left
                    rest.append(a)
                    continue
                return (f"too many arguments for element class {comp.name or '{...}'}: {a!r}",
                        f"it takes {len(positional)} positional argument(s)")
            env[positional[pi]] = unquote(a) if a.startswith('"') else a
            pi += 1
        if pi < len(positional):
            return (f"element class {comp.name or '{...}'} needs argument {positional[pi]}",
                    f"it takes {len(positional)} positional argument(s): "
                    + ", ".join(positional))
        for v in keywords.values():
            env.setdefault(v, "")
        if rest_var is not None:
            env[rest_var] = ", ".join(rest)
        return env

    def _expand_with(self, flat: str, comp: Compound, env: dict[str, str],
                     scope: _Scope) -> None:
        inner = _Scope(flat + "/", env, {}, parent=scope)
        inner.names["input"] = flat + "/input"
        inner.names["output"] = flat + "/output"
        self.tunnels.add(flat + "/input")
        self.tunnels.add(flat + "/output")
        self.expand(comp.body, inner)

    def resolve(self, ep: Endpoint, scope: _Scope) -> str:
        r = ep.ref
        if r.kind == "decl":
            assert r.decl is not None
            self.declare(r.decl, scope)
            return scope.names[r.decl.names[0][0]]
        if r.kind == "name":
            s: _Scope | None = scope
            if r.name in scope.names:
                return scope.names[r.name]
            # a class used bare: anonymous element with no configuration
            if scope.find_class(r.name) or self.class_exists(r.name):
                return self.anonymous(ClassRef(r.name, None, r.pos), "", r.pos, scope, r.pos,
                                      scope.ports.get(id(r)))
            s = scope
            known = list(s.names)
            close = difflib.get_close_matches(r.name, known + self.class_names(), n=3)
            raise self.err(
                f"undeclared element {r.name!r}",
                r.pos,
                f"did you mean {' or '.join(close)}?"
                if close
                else f"declare it first: '{r.name} :: Class(args)'",
            )
        assert r.cls is not None
        return self.anonymous(r.cls, r.config or "", r.config_pos or r.pos, scope, r.pos,
                              scope.ports.get(id(r)))

    def anonymous(
        self, cls: ClassRef, config: str, cpos: Position, scope: _Scope, pos: Position,
        ports: tuple[int, int] | None = None,
    ) -> str:
        scope.count += 1
        base = cls.name or ""
        n = scope.count
        name = f"{base}@{n}"
        while scope.prefix + name in self.graph.elements or name in scope.names:
            n += 1
            name = f"{base}@{n}"
        flat = scope.prefix + name
        scope.names[name] = flat
        self.instantiate(flat, cls, config, cpos, scope, pos, ports)
        return flat

    def connect_chain(self, chain: Chain, scope: _Scope) -> None:
        first = chain.endpoints[0]
        if first.in_port is not None:
            raise self.err(
                "input port at the start of a connection chain",
                first.in_pos,
                "remove the '[n]' before the first element",
            )
        names = [self.resolve(ep, scope) for ep in chain.endpoints]
        for i in range(len(names) - 1):
            a, b = chain.endpoints[i], chain.endpoints[i + 1]
            self.graph.connections.append(
                Connection(
                    names[i], a.out_port or 0, names[i + 1], b.in_port or 0, chain.arrows[i].pos
                )
            )

    def splice(self) -> None:
        """Replace connections through compound ``input``/``output`` tunnels by direct ones."""
        conns = self.graph.connections
        compounds = {t.rsplit("/", 1)[0] for t in self.tunnels}
        # Connections naming a compound element itself go through its tunnels.
        fixed: list[Connection] = []
        for c in conns:
            src = c.src + "/output" if c.src in compounds else c.src
            dst = c.dst + "/input" if c.dst in compounds else c.dst
            fixed.append(Connection(src, c.sport, dst, c.dport, c.pos))
        conns = fixed
        for t in sorted(self.tunnels, key=lambda s: -s.count("/")):
            ins = [c for c in conns if c.dst == t]
            outs = [c for c in conns if c.src == t]
            rest = [c for c in conns if c.dst != t and c.src != t]
            for c in ins:
                matched = [d for d in outs if d.sport == c.dport]
                if not matched:
                    owner = t.rsplit("/", 1)[0]
                    side = "input" if t.endswith("/input") else "output"
                    raise self.err(
                        f"element class instance {owner!r} has no {side} {c.dport}",
                        c.pos,
                        f"inside the class, connect '{side} [{c.dport}]'"
                        if side == "input"
                        else f"inside the class, connect something '-> [{c.dport}] output'",
                    )
                for d in matched:
                    rest.append(Connection(c.src, c.sport, d.dst, d.dport, c.pos))
            conns = rest
        # de-duplicate while keeping order
        seen: set[Connection] = set()
        out = []
        for c in conns:
            if c not in seen:
                seen.add(c)
                out.append(c)
        self.graph.connections = out


def _port_usage(body: list[object]) -> dict[object, tuple[int, int]]:
    """The ports each element of a scope is connected by: (inputs, outputs)."""
    nin: dict[object, int] = {}
    nout: dict[object, int] = {}

    def keys(ep: Endpoint) -> tuple[object, ...]:
        # By name for a declared element (all its connections), and by the reference
        # itself for an anonymous one (a bare class name may stand for several).
        r = ep.ref
        if r.kind == "name":
            return (r.name, id(r))
        if r.kind == "decl" and r.decl is not None:
            return (r.decl.names[0][0],)
        return (id(r),)

    for st in body:
        if isinstance(st, Chain):
            for a, b in itertools.pairwise(st.endpoints):
                for k in keys(a):
                    nout[k] = max(nout.get(k, 0), (a.out_port or 0) + 1)
                for k in keys(b):
                    nin[k] = max(nin.get(k, 0), (b.in_port or 0) + 1)
    return {k: (nin.get(k, 0), nout.get(k, 0)) for k in {*nin, *nout}}


def _class_ports(comp: Compound) -> tuple[int, int]:
    """A compound definition's ports: the ``input`` ports and ``output`` ports its body
    uses (as Click counts them)."""
    usage = _port_usage(comp.body)
    return usage.get("input", (0, 0))[1], usage.get("output", (0, 0))[0]


def _ports_text(ports: tuple[int, int]) -> str:
    i, o = ports
    return f"[{i} input{'' if i == 1 else 's'}, {o} output{'' if o == 1 else 's'}]"
