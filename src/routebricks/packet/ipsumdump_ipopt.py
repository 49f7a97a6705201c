"""IP options as Click's IP summary dump writes them: ``rr{1.0.0.1}+2``, ``ssrr{a^b}``,
``ts.ip{1.0.0.1=5}``, ``99=1:2``, joined by ``;`` (see :mod:`routebricks.packet.ipsumdump`)."""

from __future__ import annotations

import re

_LEAD_INT = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")


def ip_text(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def unparse_ip_opt(opt: bytes) -> str:
    """Click's text for IP options: ``rr{1.0.0.1}+2;ssrr{a^b};ts{1,!45}+2++3;99=0:5``; EOL
    and NOP are left out, ``.`` is no options, ``?`` a malformed option."""
    parts: list[str] = []
    i, n = 0, len(opt)
    while i < n:
        t = opt[i]
        if t == 0:
            break
        if t == 1:
            i += 1
            continue
        ln = opt[i + 1] if i + 1 < n else 0
        if t in (7, 131, 137):
            if i + 2 >= n or i + ln > n or ln < 3 or opt[i + 2] < 4:
                return "?"
            end, ptr = i + ln, i + opt[i + 2] - 1
            name = {7: "rr", 131: "lsrr", 137: "ssrr"}[t]
            s, sep, o = [name, "{"], "", i + 3
            while o + 4 <= end:
                if o == ptr:
                    if t == 7:
                        break
                    sep = "^"
                s += [sep, ip_text(opt[o:o + 4])]
                sep, o = ",", o + 4
            if o == end and o == ptr and t != 7:
                s.append("^")
            s.append("}")
            if o + 4 <= end and o == ptr and t == 7:
                s.append(f"+{(end - o) // 4}")
            parts.append("".join(s))
            i = end
        elif t == 68:
            if i + 3 >= n or i + ln > n or ln < 4 or opt[i + 2] < 5:
                return "?"
            end, ptr, flag = i + ln, i + opt[i + 2] - 1, opt[i + 3] & 0xF
            size = 8 if 1 <= flag <= 3 else 4
            s = ["ts", {0: "", 1: ".ip", 3: ".preip"}.get(flag, f".{flag}"), "{"]
            sep, o = "", i + 4
            while o + size <= end:
                if o == ptr:
                    if flag != 3:
                        break
                    sep = "^"
                s.append(sep)
                if flag != 0:
                    s.append(ip_text(opt[o:o + 4]) + "=")
                    o += 4
                if flag == 3 and o > ptr:
                    s[-1] = s[-1][:-1]
                else:
                    v = int.from_bytes(opt[o:o + 4], "big")
                    s.append(("!" if v >> 31 else "") + str(v & 0x7FFFFFFF))
                sep, o = ",", o + 4
            if o == end and o == ptr:
                s.append("^")
            s.append("}")
            if o + size <= end and o == ptr:
                s.append(f"+{(end - o) // size}")
            if opt[i + 3] >> 4:
                s.append(f"++{opt[i + 3] >> 4}")
            parts.append("".join(s))
            i = end
        else:
            if i + ln > n or ln < 2:
                return "?"
            data = opt[i + 2:i + ln]
            parts.append(str(t) + ("=" + ":".join(map(str, data)) if data else ""))
            i += ln
    return ";".join(parts) or "."


class _Text:
    """A cursor over option text."""

    def __init__(self, s: str) -> None:
        self.s, self.i = s, 0

    def peek(self, k: int = 0) -> str:
        return self.s[self.i + k] if self.i + k < len(self.s) else ""

    def take(self, word: str) -> bool:
        if self.s.startswith(word, self.i):
            self.i += len(word)
            return True
        return False

    def int(self) -> int | None:
        m = _LEAD_INT.match(self.s, self.i)
        if not m:
            return None
        self.i = m.end()
        return int(m.group(), 0) if m.group()[:2].lower() == "0x" else int(m.group())

    def ip(self) -> bytes | None:
        m = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+)").match(self.s, self.i)
        if not m or any(int(g) > 255 for g in m.groups()):
            return None
        self.i = m.end()
        return bytes(int(g) for g in m.groups())


def parse_ip_opt(text: str) -> bytes | None:
    """IP option bytes from Click's text (the inverse of :func:`unparse_ip_opt`, plus
    ``nop`` and ``eol``); None if the text is not valid."""
    if text in ("", "."):
        return b""
    t, out = _Text(text), bytearray()
    while True:
        start, sized = len(out), True
        kind = next((k for k in ("rr{", "ssrr{", "lsrr{") if t.take(k)), None)
        if kind:
            out += bytes([{"rr{": 7, "ssrr{": 137, "lsrr{": 131}[kind], 0, 0])
            ptr = -1
            while True:
                if t.peek() == "^" and ptr < 0:
                    ptr, t.i = len(out) - start + 1, t.i + 1
                if not t.peek().isdigit():
                    break
                a = t.ip()
                if a is None:
                    return None
                out += a
                t.take(",")
            if not t.take("}"):
                return None
            out[start + 2] = ptr if ptr >= 0 else len(out) - start + 1
            if t.peek() == "+" and t.peek(1).isdigit():
                t.i += 1
                k = t.int() or 0
                if k < 64:
                    out += bytes(4 * k)
        elif t.take("ts{") or t.take("ts."):
            flag = -1
            if t.s[t.i - 1] == ".":
                if t.take("ip{"):
                    flag = 1
                elif t.take("preip{"):
                    flag = 3
                elif t.peek().isdigit():
                    flag = t.int() or 0
                    if flag > 15 or not t.take("{"):
                        return None
                else:
                    return None
            out += bytes([68, 0, 0, 0])
            ptr, guessed = -1, False
            while True:
                if t.peek() == "^" and ptr < 0:
                    ptr, t.i = len(out) - start + 1, t.i + 1
                if not (t.peek().isdigit() or t.peek() == "!"):
                    break
                if flag == -1:  # an address (1.2.3.4=...) or a bare timestamp?
                    flag = 1 if re.match(r"\d+\.", t.s[t.i:]) else 0
                    guessed = flag == 1
                if guessed and ptr >= 0:
                    flag = 3  # addresses after the pointer: prespecified
                if flag in (1, 3):
                    a = t.ip()
                    if a is None:
                        return None
                    out += a
                    if t.take("=?") and ptr >= 0:
                        out += bytes(4)
                        t.take(",")
                        continue
                    if not t.take("="):
                        if ptr < 0:
                            return None
                        out += bytes(4)
                        t.take(",")
                        continue
                top = 0x80000000 if t.take("!") else 0
                v = t.int()
                if v is None:
                    return None
                out += ((v & 0xFFFFFFFF) | top).to_bytes(4, "big")
                t.take(",")
            if t.peek() and not t.take("}"):
                return None
            flag = max(flag, 0)
            out[start + 2] = ptr if ptr >= 0 else len(out) - start + 1
            if t.peek() == "+" and t.peek(1).isdigit():
                t.i += 1
                k = t.int() or 0
                if k < 64:
                    out += bytes(k * (8 if flag in (1, 3) else 4))
            over = 0
            if t.take("++"):
                k = t.int()
                if k is None:
                    return None
                over = k if k < 16 else 0
            out[start + 3] = over << 4 | flag
        elif t.peek().isdigit():
            sized = False
            code = t.int()
            if code is None or code > 255:
                return None
            out.append(code)
            if t.peek() == "=" and t.peek(1).isdigit():
                pos = len(out)
                out.append(0)
                while True:
                    t.i += 1
                    v = t.int()
                    if v is None or v > 255:
                        return None
                    out.append(v)
                    if not (t.peek() == ":" and t.peek(1).isdigit()):
                        break
                if len(out) - pos > 254:
                    return None
                out[pos] = len(out) - pos + 1
        elif t.take("nop"):
            sized = False
            out.append(1)
        elif t.take("eol") and t.peek() != ",":
            sized = False
            out.append(0)
        else:
            return None
        if len(out) - start > 255:
            return None
        if sized:
            out[start + 1] = len(out) - start
        if not t.peek():
            while len(out) > 40 and out[0] == 1:
                del out[0]
            return bytes(out) if len(out) <= 40 else None
        if t.peek() not in ",;":
            return None
        t.i += 1


