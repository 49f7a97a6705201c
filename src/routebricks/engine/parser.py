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

from collections.abc import Callable
from dataclasses import dataclass, field

from routebricks.engine.argtext import split_args, unquote
from routebricks.engine.graph import MAX_PORTS, Graph, Requirement
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
    from routebricks.engine.flatten import Flattener

    f = Flattener(lexers, class_exists, class_names)
    g = f.flatten(body, defines)
    g.requirements = reqs
    return g
