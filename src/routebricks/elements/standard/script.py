"""Script and DriverManager: run handler instructions at set times, per packet, or on
request, and manage when the router stops (Click's Script and DriverManager).

The value functions (``$(add 1 2)``...) are in :mod:`.scriptexpr`."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from routebricks.elements.standard import scriptexpr
from routebricks.elements.standard.scriptexpr import parse_bool, shift_word
from routebricks.engine.args import Arg, Choice, IntRange, Seconds
from routebricks.engine.argtext import unquote
from routebricks.engine.element import Element, Handler, read_handler, write_handler
from routebricks.errors import HandlerError, NoSuchHandler
from routebricks.packet.batch import PacketBatch

#: A number of steps (pause N, the step handler).
_STEPS = IntRange(0, 2**63 - 1, "step count")
_WAITS = {"wait", "pause", "wait_step", "wait_stop", "wait_time", "wait_for"}
_PRINTS = {"print", "printq", "printn", "printnq", "save", "append"}
_SETS = {"set", "setq", "init", "initq", "export", "exportq", "return", "returnq"}
_ENDS = {"end", "exit", "stop", "error", "errorq"}
_KNOWN = _WAITS | _PRINTS | _SETS | _ENDS | {
    "write", "writeq", "read", "readq", "label", "goto", "loop"}
_GOTO_SPECIAL = {"exit", "end", "stop", "error", "errorq", "begin", "loop"}
_WRITE_FAILED = -22  # $? after a failed write: Click's -EINVAL


@dataclass
class Instruction:
    op: str
    text: str


class _Failed(Exception):
    """A handler that could not be found or called; already reported."""


class _Missing(_Failed):
    """No such handler (a ``$(...)`` naming one stays as written)."""


class Script(Element):
    """Runs a script of handler instructions (Click's Script).

    Ports: none; a PACKET script has inputs and any number of outputs.
    Arguments:
        INSTRUCTION... (positional): one instruction per argument, run in order.
            Handler calls: ``write ELEM.H [VALUE]`` (``$?`` is then 0, or -22 if it failed),
            ``read ELEM.H [PARAM]`` (prints ``ELEM.H:`` and the value to stderr),
            ``print [>FILE|>>FILE] TEXT|ELEM.H [PARAM]`` (a handler when it starts with a
            letter, ``@`` or ``_``; else TEXT unquoted; to FILE, or appended to it),
            ``printn`` (no newline), ``save ELEM.H FILE``, ``append ELEM.H FILE``.
            Variables: ``set VAR TEXT``, ``init VAR TEXT`` (once, at start),
            ``export VAR TEXT`` (as init, and read handler VAR).
            Blocking: ``wait TIME`` (or ``wait_time``), ``pause [N]`` (or ``wait``,
            ``wait_step``, ``wait_stop``): until N steps.
            Control: ``label L``, ``goto L [COND]`` (L may be begin, loop, end, exit,
            stop, error), ``loop``, ``end``, ``exit``, ``stop`` (also asks the router to
            stop), ``return [VALUE]``, ``error [MSG]``.
            The ``q`` forms (setq, writeq, returnq...) remove a layer of quotes.
            Substitutions: ``$VAR``, ``${VAR}``, ``$(HANDLER [ARGS])`` (nesting allowed;
            Script's own handlers need no element name: ``$(add $x 1)``), ``$args``,
            ``$1``..., ``$#``, ``$0`` (run's arguments), ``$?``, ``$$``, ``$input``.
        TYPE (ACTIVE, PASSIVE, PACKET, DRIVER; default PACKET with ports, else ACTIVE):
            ACTIVE scripts start with the router; PASSIVE ones run when their ``run``
            handler is called; a PACKET script runs for every packet, which leaves on
            output 0 at ``end``, on output N at ``return N``, and is dropped at ``exit``;
            a DRIVER script decides what stop requests mean (see DriverManager).
    Behaviour: instructions run between batches in the driver loop. A handler that
        fails is reported as Click does (``While calling 'ELEM.H VALUE':`` and the
        reason) and the script carries on. More than 1000 jumps without blocking
        disables the script with a message. A PACKET script runs once per packet, and
        packets keep their order on each output.
    Handlers:
        step (write): advance a blocked ``wait``/``pause`` (an integer N: N steps).
        run (read with parameters, write): run the script from the start with ``$args``
            set; the read returns the ``return`` value.
        goto (write): jump to a label.
        add, sub, min, max, mul, div, idiv, mod, rem, neg, abs (read with parameters):
            arithmetic, integer while all operands are integers (div is always real).
        eq, ne, lt, gt, le, ge (read with parameters): compare two numbers (or strings).
        not, and, or, nand, nor, if, in, first, length, unquote, random, htons, htonl,
            ntohs, ntohl, cat, readable, writable (read with parameters): as in Click.
        now (read): the current time. get, shift (read with parameters), set (write):
            script variables.
        vars (read): the script's variables, NAME=VALUE per line.
    Example:
        Script(set x 0, label l, print $x, set x $(add $x 1), goto l $(lt $x 5));
    See also: DriverManager
    """

    port_count = "-/-"
    processing = "a/a"
    REST = True
    ARGS = (Arg("TYPE", Choice("ACTIVE", "PASSIVE", "PACKET", "PUSH", "DRIVER"), None),)
    FINAL = "end"
    DROPS = {"script exit": "the PACKET script ended with exit, error or a bad return"}

    def configure(self) -> None:
        self.program: list[Instruction] = []
        self.labels: dict[str, int] = {}
        for arg in self.rest:
            for text in _instructions(arg):
                op, rest = shift_word(text)
                if op not in _KNOWN:
                    raise self.error(
                        f"unknown instruction {op!r}", "instructions: " + ", ".join(sorted(_KNOWN))
                    )
                self._check(op, rest, text)
                if op == "label":
                    self.labels[rest] = len(self.program)
                self.program.append(Instruction(op, rest))
        for ins in self.program:
            if ins.op == "goto":
                target = shift_word(ins.text)[0]
                if target not in self.labels and target not in _GOTO_SPECIAL:
                    raise self.error(f"no such label {target!r}", "declare it with 'label NAME'")
        if self.type == "DRIVER" and not self.program:
            self.program.append(Instruction("pause", ""))
        self.program.append(Instruction(self.FINAL, ""))
        self.vars: dict[str, str] = {}
        self.pc = 0
        self.waiting_steps = 0  # >0: blocked until that many steps
        self.pending_steps = 0  # steps that arrived while the script was not waiting
        self.timer_token = 0  # identifies the current timed wait
        self._token_seq = 0
        self.done = False
        self.outcome = ""  # how the last run ended: end, exit, stop, error, return (or "")
        self.return_value = ""
        self.run_args = ""
        self.run_handler = ""
        self.write_status = 0
        self._context_shown = True
        self.nerrors = 0  # errors reported so far
        exports = [shift_word(i.text)[0] for i in self.program if i.op.startswith("export")]
        if exports:  # each exported variable is a read handler of this element
            self.HANDLERS = dict(type(self).HANDLERS)
            for var in exports:
                self.HANDLERS[var] = Handler(var, read=lambda e, v=var: e.vars.get(v, ""),
                                             doc=f"exported script variable {var}")

    def _check(self, op: str, rest: str, text: str) -> None:
        """Configuration-time checks of one instruction (as Click's: syntax errors)."""
        if op in ("wait", "wait_time", "wait_for") and rest and "$" not in rest:
            try:
                Seconds.parse(rest)
            except ValueError as e:
                raise self.error(f"bad time in {text!r}: {e}") from None
        bad = (
            (op in ("set", "setq") and not shift_word(rest)[1])
            or (op in ("init", "initq", "export", "exportq", "label") and not rest)
            or (op == "label" and bool(shift_word(rest)[1]))
            or (op in ("end", "exit", "stop", "loop") and bool(rest))
        )
        if bad:
            raise self.error(f"syntax error at {op!r}", f"in instruction {text!r}")

    def initialize(self) -> None:
        assert self.router is not None
        if self.type is None:
            self.type = "PACKET" if self.ninputs or self.noutputs else "ACTIVE"
        if self.type == "PUSH":
            self.type = "PACKET"
        if self.type == "PACKET" and not self.ninputs:
            raise self.error("PACKET script must have inputs", "connect '... -> NAME'")
        if self.type != "PACKET" and (self.ninputs or self.noutputs):
            raise self.error("ports allowed only on PACKET scripts", "add 'TYPE PACKET'")
        for ins in self.program:
            if ins.op.startswith(("init", "export")):
                var, value = shift_word(ins.text)
                value = self.expand(value)
                self.vars[var] = unquote(value) if ins.op.endswith("q") else value
        if self.type == "DRIVER":
            if self.router.stop_listener is not None:
                raise self.error(
                    "the router has more than one DriverManager",
                    "keep one DriverManager (or Script(TYPE DRIVER))",
                )
            self.router.stop_listener = self.on_stop_request
        if self.type in ("ACTIVE", "DRIVER"):
            self.router.schedule(0.0, self.resume)

    # ------------------------------------------------------------------ packets
    def push(self, port: int, batch: PacketBatch) -> None:
        for out, which in self._route(port, batch):
            self.emit(out, batch.select(which))

    def pull(self, port: int) -> PacketBatch | None:
        batch = self.pull_input(0)
        if batch is None:
            return None
        keep = None
        for out, which in self._route(0, batch):
            if out == 0:
                keep = batch.select(which)
            else:
                self.emit(out, batch.select(which))
        return keep

    def _route(self, port: int, batch: PacketBatch) -> list[tuple[int, np.ndarray]]:
        """Run the script once per packet; the packets' indexes grouped by output (in
        order), the dropped ones counted."""
        outs = np.empty(len(batch), dtype=np.int64)
        for i in range(len(batch)):
            self.vars["input"] = str(port)
            outs[i] = self._packet_output(self.run_from(0))
        dropped = (outs < 0) | (outs >= self.noutputs)
        self.drop(int(np.count_nonzero(dropped)), "script exit")
        return [(int(o), np.flatnonzero(outs == o)) for o in np.unique(outs[~dropped])]

    def _packet_output(self, value: str) -> int:
        if self.outcome == "end":
            return 0
        if self.outcome == "return":
            n = scriptexpr.parse_int(value.strip())
            return n if n is not None else -1
        return -1

    # ------------------------------------------------------------------ execution
    def on_stop_request(self, reason: str) -> bool:
        """A stop request is one step: it may unblock the script; the router stops only
        when the script has finished (or finishes now)."""
        if self.done:
            return True
        self.step(1)
        return self.done

    def step(self, n: int) -> None:
        if self.done:
            return
        if self.waiting_steps > 0:
            self.waiting_steps = max(0, self.waiting_steps - n)
            if self.waiting_steps == 0:
                self.resume()
        elif self.timer_token:
            self.timer_token = 0  # cancels the pending timed wait
            self.resume()
        else:
            # Not waiting yet (e.g. a source finished before the script started): keep the
            # steps for the next wait, so no stop request is lost.
            self.pending_steps += n

    def _timer_fired(self, token: int) -> None:
        if token == self.timer_token and not self.done:
            self.timer_token = 0
            self.resume()

    def run_from(self, pc: int, args: str = "", handler: str = "") -> str:
        """Run from instruction ``pc`` (the run and goto handlers, a packet); the return
        value (a PACKET script's ``end``: "0")."""
        self.pc, self.done, self.waiting_steps, self.timer_token = pc, False, 0, 0
        self.run_args, self.run_handler = args, handler
        self.outcome, self.return_value = "", ""
        try:
            self.resume()
        finally:
            self.run_args, self.run_handler = "", ""
        if self.outcome == "end" and self.type == "PACKET":
            return "0"
        return self.return_value if self.outcome == "return" else ""

    def resume(self) -> None:
        """Run instructions from ``pc`` until one blocks or the script finishes."""
        jumps = 0
        assert self.router is not None
        self._context_shown = self.type == "DRIVER"  # Click names the element otherwise
        while not self.done and self.pc < len(self.program):
            ins = self.program[self.pc]
            self.pc += 1
            op, text = ins.op, ins.text
            if op in _WAITS:
                if self._wait(op, self.expand(text)):
                    return
            elif op in ("write", "writeq"):
                self._write(self.expand(text), op == "writeq")
            elif op in ("read", "readq"):
                spec = self.expand(text)
                try:
                    value = self._read(spec, op == "readq", context=True)
                    sys.stderr.write(f"{self._handler_name(spec)}:\n{value}\n")
                except _Failed:
                    pass
            elif op in _PRINTS:
                self._print(op, text)
            elif op in _SETS:
                var, value = shift_word(text) if not op.startswith("return") else ("", text)
                if op.startswith(("init", "export")):
                    continue
                value = self.expand(value)
                value = unquote(value) if op.endswith("q") else value
                if op.startswith("return"):
                    self.return_value = value
                    self._finish("return")
                    return
                self.vars[var] = value
            elif op in ("goto", "loop"):
                target, cond = shift_word(text) if op == "goto" else ("begin", "")
                cond = self.expand(cond)
                ok = parse_bool(cond) if cond else True
                if ok is None:
                    self._report([f"bad condition '{cond}'"])
                    continue
                if not ok:
                    continue
                if target in _ENDS:
                    self._end(target, "")
                    return
                jumps += 1
                if jumps >= 1000:
                    sys.stderr.write(
                        f"{self.name} :: {type(self).__name__}: too many jumps, giving up\n")
                    self.pc = len(self.program)
                    self.done = True
                    return
                self.pc = 0 if target in ("begin", "loop") else self.labels[target]
            elif op in _ENDS:
                self._end(op, text)
                return

    def _wait(self, op: str, arg: str) -> bool:
        """Start a wait; whether the script blocks."""
        assert self.router is not None
        if op in ("wait_time", "wait_for") or (op == "wait" and arg):
            try:
                delay = Seconds.parse(arg) if arg else 0.0
            except ValueError:
                self._report(["syntax error at 'wait'"])
                return True
            self._token_seq += 1
            token = self.timer_token = self._token_seq
            self.router.schedule(delay, lambda t=token: self._timer_fired(t))
            return True
        try:
            need = _STEPS.parse(arg) if arg else 1
        except ValueError as e:
            raise self.error(f"bad step count in '{op} {arg[:40]}': {e}") from None
        used = min(need, self.pending_steps)
        self.pending_steps -= used
        if used == need:
            return False
        self.waiting_steps = need - used
        return True

    def _end(self, op: str, text: str) -> None:
        if op.startswith("error") and text:
            msg = self.expand(text)
            self._report([unquote(msg) if op == "errorq" else msg])
        self._finish(op.rstrip("q") if op == "errorq" else op)

    def _finish(self, op: str) -> None:
        self.done = True
        self.outcome = op
        if op == "stop" and self.router is not None:
            self.router.request_stop(f"{self.name}: stop", force=self.type == "DRIVER")

    # ------------------------------------------------------------------ handler calls
    def _report(self, lines: list[str]) -> None:
        """An error in Click's form: under ``While executing 'NAME :: CLASS':`` (once per
        run; not for a driver script), indented."""
        if not self._context_shown:
            sys.stderr.write(f"While executing '{self.name} :: {type(self).__name__}':\n")
            self._context_shown = True
        self.nerrors += 1
        pad = "" if self.type == "DRIVER" else "  "
        sys.stderr.write("".join(f"{pad}{line}\n" for line in lines))

    def _target(self, name: str, kind: str) -> tuple[Element | None, str]:
        """The element and handler ``name`` means (None: a global handler); reports and
        raises :class:`_Failed` when there is no such handler."""
        assert self.router is not None
        ename, dot, hname = name.partition(".")
        if not dot:
            if name in self.HANDLERS:
                return self, name
            return None, name
        e = self.router.elements.get(ename)
        if e is None:
            self._report([f"no element named '{ename}'"])
            raise _Missing
        h = e.HANDLERS.get(hname)
        if h is None or (h.read if kind == "read" else h.write) is None:
            self._report([f"no '{name}' {kind} handler"])
            raise _Missing
        return e, hname

    def _read(self, spec: str, unquote_param: bool = False, context: bool = False) -> str:
        assert self.router is not None
        name, param = shift_word(spec)
        param = unquote(param) if unquote_param else param
        e, hname = self._target(name, "read")
        try:
            if e is None:
                if param:
                    raise HandlerError(f"{name} takes no parameter")
                return self.router.read_handler(name)
            return e.read(hname, param)
        except NoSuchHandler:
            self._report([f"no '{name}' read handler"])
            raise _Missing from None
        except HandlerError as err:
            lines = [_reason(err, e, hname)]
            if context:
                lines = [f"While calling '{_call(name, param)}':", "  " + lines[0]]
            self._report(lines)
            raise _Failed from None

    def _write(self, spec: str, unquote_value: bool) -> None:
        assert self.router is not None
        name, value = shift_word(spec)
        value = unquote(value) if unquote_value else value
        try:
            e, hname = self._target(name, "write")
            try:
                if e is None:
                    self.router.write_handler(name, value)
                else:
                    e.write(hname, value)
                self.write_status = 0
            except NoSuchHandler:
                self._report([f"no '{name}' write handler"])
                raise _Failed from None
            except HandlerError as err:
                self._report([f"While calling '{_call(name, value)}':",
                              "  " + _reason(err, e, hname)])
                raise _Failed from None
        except _Failed:
            self.write_status = _WRITE_FAILED

    def _handler_name(self, spec: str) -> str:
        name = shift_word(spec)[0]
        return name if "." in name else f"{self.name}.{name}"

    def _print(self, op: str, text: str) -> None:
        if op in ("save", "append"):  # save H FILE: print >FILE H
            word, file = shift_word(text)
            text = (">" if op == "save" else ">>") + (file or "-") + " " + word
            op = "print"
        append = text.startswith(">>")
        path = "-"
        if text.startswith(">"):
            path, text = shift_word(text[1 + append:])
            path = unquote(path)
        before = self.nerrors
        if text[:1].isalpha() or text[:1] in ("@", "_"):
            try:
                value = self._read(self.expand(text), op.endswith("q"), context=True)
            except _Failed:
                return
        else:
            value = unquote(self.expand(text, protect=True))
        if not op.startswith("printn") and not value.endswith("\n") and before == self.nerrors:
            value += "\n"
        if path == "-":
            sys.stdout.write(value)
            sys.stdout.flush()
            return
        try:
            with open(path, "a" if append else "w", encoding="utf-8") as f:
                f.write(value)
        except OSError as e:
            self._report([f"{path}: {e.strerror}"])

    # ------------------------------------------------------------------ substitution
    def expand(self, text: str, protect: bool = False) -> str:
        """``text`` with Click's substitutions (see :func:`scriptexpr.expand`)."""
        return scriptexpr.expand(text, self._variable, self._substituted_read, protect)

    def _substituted_read(self, spec: str) -> str | None:
        try:
            return self._read(spec)
        except _Missing:
            return None
        except _Failed:
            return ""

    def _variable(self, name: str) -> str | None:
        if name in self.vars:
            return self.vars[name]
        args = scriptexpr.words(self.run_args)
        special = {"?": str(self.write_status), "args": self.run_args, "$": str(os.getpid()),
                   "0": self.run_handler, "#": str(len(args))}
        if name in special:
            return special[name]
        if name.isdigit():
            k = int(name)
            return args[k - 1] if 0 < k <= len(args) else ""
        return None

    # ------------------------------------------------------------------ handlers
    @write_handler("step")
    def h_step(self, value: str) -> None:
        """Advance a blocked wait by N steps (default 1)."""
        v = value.strip()
        try:
            n = 1 if not v or v == "router" else _STEPS.parse(v)
        except ValueError:
            raise ValueError("syntax error") from None
        self.step(n)

    @read_handler("run", param=True)
    def h_run_read(self, args: str) -> str:
        """Run the script from the start with $args; its return value."""
        return self.run_from(0, args.strip(), "run")

    @write_handler("run")
    def h_run(self, args: str) -> None:
        """Run the script from the start with $args."""
        self.run_from(0, args.strip(), "run")

    @write_handler("goto")
    def h_goto(self, label: str) -> None:
        """Jump to a label and run from there."""
        if label.strip() not in self.labels:
            raise ValueError("jump to nonexistent label")
        self.run_from(self.labels[label.strip()])

    @read_handler("vars")
    def h_vars(self) -> str:
        """Script variables, NAME=VALUE per line."""
        return "\n".join(f"{k}={v}" for k, v in sorted(self.vars.items()))

    @read_handler("now")
    def h_now(self) -> str:
        """The current time (seconds since the epoch)."""
        return scriptexpr.now()

    @read_handler("get", param=True)
    def h_get(self, name: str) -> str:
        """A script variable's value."""
        return self._var_ref(name, "get")

    @read_handler("shift", param=True)
    def h_shift(self, name: str) -> str:
        """Shift the first word off a variable (default: args) and return it."""
        return self._var_ref(name, "shift")

    @write_handler("set")
    def h_set(self, value: str) -> None:
        """``set VAR VALUE`` sets a script variable."""
        var, rest = shift_word(value)
        if not var:
            raise ValueError("no variable")
        if var == "args":
            self.run_args = rest
        else:
            self.vars[var] = rest

    def _var_ref(self, text: str, what: str) -> str:
        var, rest = shift_word(text)
        var = var or ("args" if what == "shift" else "")
        if not var:
            raise ValueError("no variable")
        if rest:
            raise ValueError("too many arguments")
        if var != "args" and var not in self.vars:
            raise ValueError(f"undefined variable '{var}'")
        value = self.run_args if var == "args" else self.vars[var]
        if what == "get":
            return value
        first, value = shift_word(value)
        if var == "args":
            self.run_args = value
        else:
            self.vars[var] = value
        return first

    @read_handler("readable", param=True)
    def h_readable(self, names: str) -> str:
        """Whether every named handler exists and is readable."""
        return self._handlers_exist(names, "read")

    @read_handler("writable", param=True)
    def h_writable(self, names: str) -> str:
        """Whether every named handler exists and is writable."""
        return self._handlers_exist(names, "write")

    def _handlers_exist(self, names: str, kind: str) -> str:
        assert self.router is not None
        for name in scriptexpr.words(names):
            ename, dot, hname = name.partition(".")
            e = self.router.elements.get(ename) if dot else self
            h = e.HANDLERS.get(hname if dot else name) if e is not None else None
            if h is None or getattr(h, kind) is None:
                return "false"
        return "true"


def _value_handler(fname: str) -> Handler:
    def read(e: Any, text: str) -> str:
        return scriptexpr.evaluate(fname, text)

    return Handler(fname, read=read, read_param=True, doc=f"Click's Script {fname}")


Script.HANDLERS = {**Script.HANDLERS,
                   **{f: _value_handler(f) for f in scriptexpr.FUNCTIONS}}


def _reason(err: HandlerError, e: Element | None, hname: str) -> str:
    """A handler error's reason without our ``ELEM.H: `` prefix (Click indents it under
    the call instead)."""
    msg = str(err)
    prefix = f"{e.name}.{hname}: " if e is not None else f"{hname}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


def _call(name: str, value: str) -> str:
    return f"{name} {value}" if value else name


def _instructions(arg: str) -> list[str]:
    """One argument may hold one instruction (Click); allow newline-separated ones too."""
    return [line.strip() for line in arg.split("\n") if line.strip()]
