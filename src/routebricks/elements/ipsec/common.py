"""What the IPsec elements share: SA arguments, key parsing, and keeping keys out of sight.

Every IPsec element takes its security associations (SAs) the same two ways:

* one SA in arguments, in ``ip xfrm state`` words: ``SPI 0x1001, ALG aes128gcm, KEY 0x...,
  SRC 192.0.2.1, DST 192.0.2.2`` (``ALG aes128cbc-sha1`` also takes ``AUTHKEY 0x...``);
* many SAs from a file, ``SAS FILE`` (the format of :mod:`routebricks.ipsec.sa`), optionally
  narrowed to one tunnel endpoint with ``LOCAL ADDR``: outbound SAs are those whose ``src``
  is LOCAL, inbound SAs those whose ``dst`` is LOCAL. This lets two gateways share one file.

Keys are secrets. They are parsed here and nowhere else, never echoed in an error message,
and replaced by ``<redacted>`` in the ``config`` read handler, in :meth:`unparse` and in the
configuration line an error message quotes.
"""

from __future__ import annotations

import re
from typing import ClassVar

from routebricks.engine.args import Arg, Choice, Filename, IntRange, IPAddress, Raw
from routebricks.engine.argtext import split_args, split_keyword, unquote
from routebricks.engine.element import Element, read_handler
from routebricks.errors import ConfigError
from routebricks.ipsec import ALG_CBC, ALG_GCM, ALGORITHMS, SAFileError, SecurityAssociation
from routebricks.ipsec.sa import PARAMS, int_to_ip, load_sa_file

#: Argument keywords whose values are secret.
SECRET_KEYWORDS = ("KEY", "AUTHKEY")
#: What replaces a secret in anything shown.
REDACTED = "<redacted>"
# Long hex strings in any argument (a key pasted in the wrong place) are hidden too.
_HEX_BLOB = re.compile(r"0[xX][0-9a-fA-F_]{16,}|\\<[0-9a-fA-F\s]{16,}>|\b[0-9a-fA-F]{32,}\b")
_HEX_KEY = re.compile(r"0[xX]((?:[0-9a-fA-F]{2})+)")

#: The arguments naming one SA, or a file of them.
SA_ARGS: tuple[Arg, ...] = (
    Arg("SPI", IntRange(256, 0xFFFFFFFF, "SPI from 256 to 0xffffffff")),
    Arg("ALG", Choice(*ALGORITHMS)),
    Arg("KEY", Raw),
    Arg("AUTHKEY", Raw),
    Arg("SRC", IPAddress),
    Arg("DST", IPAddress),
    Arg("SAS", Filename),
    Arg("LOCAL", IPAddress),
)
_INLINE = ("SPI", "ALG", "KEY", "AUTHKEY", "SRC", "DST")

KEY_HINT = {
    ALG_GCM: "aes128gcm takes KEY 0x + 40 hex digits: the 16-byte AES key, then the 4-byte "
             "salt (as ip xfrm's rfc4106(gcm(aes)))",
    ALG_CBC: "aes128cbc-sha1 takes KEY 0x + 32 hex digits (AES-128) and AUTHKEY 0x + 40 hex "
             "digits (HMAC-SHA1)",
}


def redact_config(config: str) -> str:
    """``config`` with the values of KEY and AUTHKEY (and any long hex string) replaced by
    ``<redacted>``; comments dropped, arguments joined by ``", "``."""
    parts = []
    for arg in split_args(config):
        kw = split_keyword(arg)
        if kw is not None and kw[0] in SECRET_KEYWORDS:
            parts.append(f"{kw[0]} {REDACTED}")
        else:
            parts.append(_HEX_BLOB.sub(REDACTED, arg))
    return ", ".join(parts)


class SAElement(Element):
    """Base of the IPsec elements: SA arguments, redaction (not an element itself)."""

    ABSTRACT = True
    ARGS: ClassVar[tuple[Arg, ...]] = SA_ARGS

    # Set by parse_config from SA_ARGS.
    spi: int | None
    alg: str | None
    key: str | None
    authkey: str | None
    src: int | None
    dst: int | None
    sas: str | None
    local: int | None

    # ------------------------------------------------------------------ no keys in sight
    def _secrets(self) -> list[str]:
        """The KEY/AUTHKEY texts of the configuration, as written and unquoted."""
        out: list[str] = []
        try:
            args = split_args(self.config)
        except Exception:  # noqa: BLE001 - redaction must never fail
            return out
        for arg in args:
            kw = split_keyword(arg)
            if kw is not None and kw[0] in SECRET_KEYWORDS and kw[1]:
                out += [kw[1], unquote(kw[1])]
        return sorted({s for s in out if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this element's configuration replaced."""
        for s in self._secrets():
            text = text.replace(s, REDACTED)
        return _HEX_BLOB.sub(REDACTED, text)

    def redacted_config(self) -> str:
        return redact_config(self.config)

    def error(self, message: str, hint: str | None = None) -> ConfigError:
        """As :meth:`Element.error`, with secrets scrubbed from the message, the hint and
        the configuration line that the rendered error quotes."""
        err = super().error(self.scrub(message), self.scrub(hint) if hint else None)
        line = self._source_line()
        if line is not None:
            err.source_line = self.scrub(line)
            err.args = (err.render(),)
        return err

    def _source_line(self) -> str | None:
        if self.pos is None or self.router is None:
            return None
        text = self.router.graph.sources.get(self.pos.file)
        if text is None:
            return None
        lines = text.split("\n")
        return lines[self.pos.line - 1] if 0 < self.pos.line <= len(lines) else None

    def unparse_config(self) -> str:
        """The configuration string to show or write back out: keys redacted."""
        return self.redacted_config()

    def unparse(self) -> str:
        cfg = self.unparse_config()
        return f"{self.name} :: {type(self).__name__}" + (f"({cfg})" if cfg.strip() else "")

    @read_handler("config")
    def h_config(self) -> str:
        """The element's configuration string, with KEY and AUTHKEY values redacted."""
        return self.redacted_config()

    # ------------------------------------------------------------------ SAs
    def _parse_key(self, name: str, text: str | None, want: int, alg: str) -> bytes:
        if text is None:
            raise self.error(f"{alg} needs {name}", KEY_HINT[alg])
        m = _HEX_KEY.fullmatch(unquote(text).strip().replace("_", ""))
        if m is None:
            # Never show the value: it is (meant to be) a key.
            raise self.error(f"{name} must be 0x followed by {2 * want} hex digits "
                             f"({want} bytes)", KEY_HINT[alg])
        key = bytes.fromhex(m.group(1))
        if len(key) != want:
            raise self.error(f"{name} is {len(key)} bytes; {alg} needs {want}", KEY_HINT[alg])
        return key

    def load_sas(self, way: str) -> list[SecurityAssociation]:
        """The SAs this element uses in direction ``way`` (``"out"`` or ``"in"``), from the
        arguments or the SAS file (narrowed by LOCAL). Raises a ConfigError without keys."""
        given = [n for n in _INLINE if getattr(self, n.lower()) is not None]
        if self.sas is not None:
            if given:
                raise self.error(f"give either SAS or the SA arguments, not both "
                                 f"({', '.join(given)} given with SAS)")
            return self._load_file(way)
        if self.local is not None:
            raise self.error("LOCAL only narrows an SAS file", "drop LOCAL, or use SAS FILE")
        missing = [n for n in ("SPI", "ALG", "KEY", "SRC", "DST") if n not in given]
        if missing:
            raise self.error(
                f"missing SA argument(s) {', '.join(missing)}",
                "one SA: SPI 0x1001, ALG aes128gcm, KEY 0x<40 hex digits>, SRC a.b.c.d, "
                "DST a.b.c.d; or many: SAS FILE")
        alg = str(self.alg)
        p = PARAMS[alg]
        key = self._parse_key("KEY", self.key, p.key_len, alg)
        auth = None
        if p.auth_key_len:
            auth = self._parse_key("AUTHKEY", self.authkey, p.auth_key_len, alg)
        elif self.authkey is not None:
            raise self.error(f"{alg} takes no AUTHKEY (GCM computes the ICV itself)")
        try:
            return [SecurityAssociation(int(self.spi or 0), alg, key, int(self.src or 0),
                                        int(self.dst or 0), auth_key=auth)]
        except ValueError as e:  # the library's messages never contain keys
            raise self.error(str(e)) from None

    def _load_file(self, way: str) -> list[SecurityAssociation]:
        path = self.resolve_path(str(self.sas))
        try:
            sas = load_sa_file(path)
        except SAFileError as e:  # names file:line:column, never a key
            where = f"{e.pos}: " if e.pos is not None else ""
            raise self.error(f"bad SA file: {where}{e.message}", e.hint) from None
        except ConfigError as e:
            raise self.error(e.message, e.hint) from None
        keep = []
        for sa in sas:
            if way == "out":
                ok = sa.direction != "in" and (self.local is None or sa.src == self.local)
            else:
                ok = sa.direction != "out" and (self.local is None or sa.dst == self.local)
            if ok:
                keep.append(sa)
        if not keep:
            side = "src" if way == "out" else "dst"
            who = f" with {side}={int_to_ip(self.local)}" if self.local is not None else ""
            raise self.error(f"{self.sas} has no {'outbound' if way == 'out' else 'inbound'} "
                             f"SA{who}", "check LOCAL and the SAs' src/dst/dir fields")
        return keep


def sa_lines(sas: list[SecurityAssociation]) -> str:
    """One redacted line per SA, with its packet counters."""
    lines = []
    for sa in sas:
        c = sa.counters
        counts = " ".join(f"{k.replace(' ', '_')}={v}" for k, v in sorted(c.items()) if v)
        lines.append(sa.redacted() + (f" {counts}" if counts else ""))
    return "\n".join(lines)
