"""The Click configuration language: parse to statements, then flatten into a :class:`Graph`.

Supported: ``//`` and ``/* */`` comments; declarations ``a, b :: Class(config)``; anonymous
elements ``Class(config)`` named ``Class@N``; connection chains ``a [1] -> [2] b -> c`` with
declarations inside them; ``elementclass Name { [$formal, KEYWORD $kw |] ... }`` with ``input``
and ``output`` (and anonymous compounds ``{ ... }``), the synonym form ``elementclass A B``;
``define($X value, ...)`` and ``$X``/``${X}`` in configuration strings; ``require(package
NAME)`` and ``require(python FILE)``.

Compound elements are expanded: element ``n`` of compound class ``C`` becomes ``n/inner``
elements, and connections through ``input``/``output`` are spliced, as Click does when it
flattens a configuration.

Every error carries file:line:column, the offending line and a hint.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from routebricks.engine.args import split_args, split_keyword, strip_comments, unquote
from routebricks.engine.graph import MAX_PORTS, Connection, ElementDecl, Graph, Requirement
from routebricks.engine.lexer import CONFIG, EOF, IDENT, KEYWORD, OP, PORT, VARIABLE, Lexer, Token
from routebricks.errors import ConfigError, Position, shown
from routebricks.textfile import NotUTF8Error, decode_utf8

#: How deeply element classes (``{ ... }``) may nest, in the text and once expanded: the
#: parser and the flattener recurse once per level, and Python's stack is finite.
MAX_NESTING = 64


# ---------------------------------------------------------------------- syntax tree
@dataclass
class Compound:
    formals: list[tuple[str | None, str]]  # (keyword or None, "$var")
    body: list[object]
    pos: Position
    name: str = ""
    #: Further definitions after ``||`` (Click's overloaded element classes): the first
    #: whose formals take the arguments is used.
    overloads: list[Compound] = field(default_factory=list)
    #: ``...`` as the last alternative: the class's previous definition, set when the
    #: class is declared.
    extends: bool = False
    previous: ClassRef | None = None


@dataclass
class ClassRef:
    name: str | None
    compound: Compound | None
    pos: Position


@dataclass
class Decl:
    names: list[tuple[str, Position]]
    cls: ClassRef
    config: str | None
    config_pos: Position | None
    override: bool = False


@dataclass
class Ref:
    """An element in a connection: a declared name, a declaration, or an anonymous element."""

    kind: str  # "name" | "decl" | "anon"
    pos: Position
    name: str = ""
    decl: Decl | None = None
    cls: ClassRef | None = None
    config: str | None = None
    config_pos: Position | None = None


@dataclass
class Endpoint:
    ref: Ref
    in_port: int | None = None
    out_port: int | None = None
    in_pos: Position | None = None
    out_pos: Position | None = None


@dataclass
class Chain:
    endpoints: list[Endpoint]
    arrows: list[Token]


@dataclass
class ElementClass:
    name: str
    cls: ClassRef
    pos: Position


@dataclass
class Define:
    config: str
    pos: Position


@dataclass
class Require:
    config: str
    pos: Position


# ---------------------------------------------------------------------- parsing
class Parser:
    def __init__(self, text: str, filename: str = "<config>", override: bool = False) -> None:
        self.lexer = Lexer(text, filename)
        self.toks = self.lexer.tokens()
        self.k = 0
        self.override = override
        self.depth = 0  # element classes open around the current token

    # token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.toks[min(self.k + ahead, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.peek()
        self.k += 1
        return t

    def at(self, kind: str, text: str | None = None, ahead: int = 0) -> bool:
        t = self.peek(ahead)
        return t.kind == kind and (text is None or t.text == text)

    def error(self, tok: Token, msg: str, hint: str | None = None) -> ConfigError:
        return ConfigError(msg, tok.pos, hint, self.lexer.source_line(tok.pos))

    def expect(self, kind: str, text: str | None, what: str, hint: str | None = None) -> Token:
        if not self.at(kind, text):
            t = self.peek()
            found = "end of file" if t.kind == EOF else repr(t.text)
            raise self.error(t, f"expected {what}, found {found}", hint)
        return self.next()

    # grammar
    def parse(self) -> list[object]:
        body = self.statements(top=True)
        self.expect(EOF, None, "end of file")
        return body

    def statements(self, top: bool) -> list[object]:
        body: list[object] = []
        while True:
            if self.at(OP, ";"):
                self.next()
                continue
            t = self.peek()
            if t.kind == EOF or (not top and (self.at(OP, "}") or self.at(OP, "||"))):
                return body
            if t.kind == KEYWORD:
                body.append(self.keyword_statement())
            else:
                body.append(self.connection_or_decl())

    def keyword_statement(self) -> object:
        kw = self.next()
        if kw.text == "elementclass":
            name = self.expect(IDENT, None, "a class name after 'elementclass'")
            if self.at(OP, "{"):
                comp = self.compound()
                comp.name = name.text
                return ElementClass(name.text, ClassRef(None, comp, comp.pos), kw.pos)
            syn = self.expect(
                IDENT,
                None,
                "'{' or an existing class name",
                "write 'elementclass Name { ... }' or 'elementclass Name Other'",
            )
            return ElementClass(name.text, ClassRef(syn.text, None, syn.pos), kw.pos)
        cfg = self.expect(CONFIG, None, f"'(' after {kw.text!r}", f"write {kw.text}(...)")
        if kw.text == "define":
            return Define(cfg.text, cfg.pos)
        return Require(cfg.text, cfg.pos)

    def compound(self) -> Compound:
        open_tok = self.expect(OP, "{", "'{'")
        if self.depth >= MAX_NESTING:
            raise self.error(
                open_tok,
                f"element classes nested too deeply (more than {MAX_NESTING} levels)",
                "define the inner classes separately with 'elementclass Name { ... }'",
            )
        self.depth += 1
        formals = self.formals()
        body = self.statements(top=False)
        first = Compound(formals, body, open_tok.pos)
        while self.at(OP, "||"):  # Click's overloaded classes: { ... || $a | ... }
            alt_pos = self.next().pos
            if self.at(OP, "..."):  # "the previous definition of this class"
                self.next()
                first.extends = True
                break
            first.overloads.append(Compound(self.formals(), self.statements(top=False),
                                            alt_pos))
        self.depth -= 1
        self.expect(
            OP,
            "}",
            "'}' to close the element class",
            f"the '{{' at line {open_tok.pos.line} column {open_tok.pos.column} is open",
        )
        return first

    def formals(self) -> list[tuple[str | None, str]]:
        """``$a, $b, KEYWORD $c |`` at the start of a compound, if present."""
        save = self.k
        out: list[tuple[str | None, str]] = []
        while True:
            if self.at(VARIABLE):
                out.append((None, self.next().text))
            elif self.at(IDENT) and self.at(VARIABLE, ahead=1):
                kw = self.next().text
                out.append((kw, self.next().text))
            else:
                break
            if self.at(OP, ","):
                self.next()
                continue
            break
        if out and self.at(OP, "|"):
            self.next()
            return out
        self.k = save
        return []

    def class_ref(self) -> ClassRef:
        if self.at(OP, "{"):
            c = self.compound()
            return ClassRef(None, c, c.pos)
        t = self.expect(IDENT, None, "a class name after '::'")
        return ClassRef(t.text, None, t.pos)

    def maybe_config(self) -> tuple[str | None, Position | None]:
        if self.at(CONFIG):
            t = self.next()
            return t.text, t.pos
        return None, None

    def connection_or_decl(self) -> object:
        # a, b, c :: Class(config)
        if self.at(IDENT) and self.at(OP, ",", 1):
            names: list[tuple[str, Position]] = []
            while True:
                t = self.expect(IDENT, None, "an element name")
                names.append((t.text, t.pos))
                if not self.at(OP, ","):
                    break
                self.next()
            self.expect(
                OP,
                "::",
                "'::' after the list of element names",
                "declare several elements as 'a, b :: Class(args)'",
            )
            cls = self.class_ref()
            cfg, cpos = self.maybe_config()
            return Decl(names, cls, cfg, cpos, self.override)
        endpoints = [self._endpoint_after_arrow()]
        arrows: list[Token] = []
        while self.at(OP, "->") or self.at(OP, "=>"):
            arrows.append(self.next())
            endpoints.append(self._endpoint_after_arrow())
        if len(endpoints) == 1:
            ep = endpoints[0]
            if ep.in_port is not None:
                raise ConfigError(
                    "input port given, but no connection leads to it",
                    ep.in_pos,
                    "write 'a -> [1] b' or remove the '[n]'",
                    self.lexer.source_line(ep.in_pos),
                )  # type: ignore[arg-type]
            if ep.out_port is not None:
                raise ConfigError(
                    "output port given, but no connection follows",
                    ep.out_pos,
                    "write 'a [1] -> b' or remove the '[n]'",
                    self.lexer.source_line(ep.out_pos),
                )  # type: ignore[arg-type]
            if ep.ref.kind == "decl":
                return ep.ref.decl
        else:
            last = endpoints[-1]
            if last.out_port is not None:
                raise ConfigError(
                    "output port at the end of a connection chain",
                    last.out_pos,
                    "remove the '[n]' or connect it with '->'",
                    self.lexer.source_line(last.out_pos),
                )  # type: ignore[arg-type]
        return Chain(endpoints, arrows)

    def _endpoint_after_arrow(self) -> Endpoint:
        """``[in] element [out]``, each port optional."""
        in_port = in_pos = None
        if self.at(OP, "["):
            in_port, in_pos = self.port()
        ep = Endpoint(self.element_ref(), in_port, None, in_pos)
        if self.at(OP, "["):
            ep.out_port, ep.out_pos = self.port()
        return ep

    def port(self) -> tuple[int, Position]:
        open_tok = self.expect(OP, "[", "'['")
        t = self.expect(PORT, None, "a port number", "ports are numbers: [0], [1], ...")
        self.expect(OP, "]", "']' after the port number", "one port per bracket: 'a [1] -> [0] b'")
        # Compare digits before converting: int() refuses numbers of 4300 digits and more.
        digits = t.text.lstrip("0") or "0"
        if len(digits) > len(str(MAX_PORTS)) or int(digits) >= MAX_PORTS:
            raise self.error(
                t, f"port number {shown(t.text, 24)} is too large",
                f"ports are numbered from 0 to {MAX_PORTS - 1}",
            )
        return int(digits), open_tok.pos

    def element_ref(self) -> Ref:
        t = self.peek()
        if self.at(OP, "{"):
            cls = self.class_ref()
            cfg, cpos = self.maybe_config()
            return Ref("anon", t.pos, cls=cls, config=cfg, config_pos=cpos)
        if t.kind != IDENT:
            found = "end of file" if t.kind == EOF else repr(t.text)
            hint = (
                "a connection must end in an element"
                if t.kind == EOF or t.text == ";"
                else "expected an element name, a class, or a declaration 'name :: Class'"
            )
            if t.kind == PORT or t.text == "[":
                hint = "ports go next to an element: 'a [1] -> [0] b'"
            raise self.error(t, f"expected an element, found {found}", hint)
        self.next()
        if self.at(OP, "::"):
            self.next()
            cls = self.class_ref()
            cfg, cpos = self.maybe_config()
            decl = Decl([(t.text, t.pos)], cls, cfg, cpos, self.override)
            return Ref("decl", t.pos, name=t.text, decl=decl)
        if self.at(CONFIG):
            c = self.next()
            return Ref(
                "anon", t.pos, cls=ClassRef(t.text, None, t.pos), config=c.text, config_pos=c.pos
            )
        return Ref("name", t.pos, name=t.text)


# ---------------------------------------------------------------------- flattening
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


# ---------------------------------------------------------------------- entry points
def decode_config(data: bytes, filename: str) -> str:
    """A configuration file's bytes as text; a ConfigError at the first byte that is not
    UTF-8 (file:line:column, the line, a caret)."""
    try:
        return decode_utf8(data)
    except NotUTF8Error as e:
        raise ConfigError(
            f"byte 0x{e.byte:02x} is not UTF-8 text",
            Position(filename, e.line, e.column),
            "a configuration is UTF-8 text: is this the right file?",
            e.source_line,
        ) from None


def parse_requirements(body: list[object]) -> list[Requirement]:
    reqs: list[Requirement] = []
    for st in body:
        if isinstance(st, Require):
            for arg in split_args(st.config):
                parts = arg.split(None, 1)
                if len(parts) == 2:
                    reqs.append(Requirement(parts[0], unquote(parts[1]), st.pos))
                else:
                    reqs.append(Requirement("feature", unquote(parts[0]), st.pos))
    return reqs


def parse_config(
    text: str,
    filename: str = "<config>",
    *,
    class_exists: Callable[[str], bool],
    class_names: Callable[[], list[str]] = list,
    extra: str | None = None,
    extra_name: str = "<-e>",
    load_requirement: Callable[[Requirement], None] | None = None,
    defines: dict[str, str] | None = None,
) -> Graph:
    """Parse and flatten a configuration (plus optional ``-e`` text that may redeclare
    elements of the file, replacing them)."""
    p = Parser(text, filename)
    body = p.parse()
    lexers = {filename: p.lexer}
    if extra:
        p2 = Parser(extra, extra_name, override=True)
        body = body + p2.parse()
        lexers[extra_name] = p2.lexer
    reqs = parse_requirements(body)
    for r in reqs:
        if load_requirement:
            load_requirement(r)
    f = Flattener(lexers, class_exists, class_names)
    g = f.flatten(body, defines)
    g.requirements = reqs
    return g
