"""Script and DriverManager: run handler instructions at set times, and manage when the
router stops (Click's Script and DriverManager)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from routebricks.engine.args import Arg, Bool, Choice, IntRange, Seconds, unquote
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.errors import HandlerError

#: A number of steps (pause N, the step handler).
_STEPS = IntRange(0, 2**63 - 1, "step count")
_WAITS = {"wait", "pause", "wait_step", "wait_stop", "wait_time", "wait_for"}
_KNOWN = _WAITS | {
    "write",
    "writeq",
    "read",
    "readq",
    "print",
    "printq",
    "printn",
    "printnq",
    "stop",
    "end",
    "exit",
    "label",
    "goto",
    "loop",
    "set",
    "setq",
    "init",
    "initq",
    "return",
    "error",
}
_VAR = re.compile(r"\$(?:\(([^()]*)\)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass
class Instruction:
    op: str
    text: str


class Script(Element):
    """Runs a script of handler instructions (Click's Script).

    Ports: none.
    Arguments:
        INSTRUCTION... (positional): one instruction per argument, run in order:
            ``wait TIME`` (or ``wait_time``/``wait_for``) sleeps; ``wait``/``pause``/``wait_stop
            [N]`` blocks until N steps (for DriverManager: stop requests); ``write ELEM.H
            [VALUE]`` calls a write handler; ``read ELEM.H`` prints ``ELEM.H:`` and the value
            to stderr; ``print TEXT`` or ``print ELEM.H`` prints to stdout; ``set VAR TEXT``
            sets ``$VAR``; ``label L``, ``goto L [COND]``, ``loop``; ``end``/``exit`` finish
            the script; ``stop`` finishes it and stops the router. ``$VAR``, ``${VAR}`` and
            ``$(ELEM.H)`` (a read handler's value) are expanded in instruction text.
        TYPE (ACTIVE, PASSIVE, DRIVER; default ACTIVE): ACTIVE scripts start when the router
            starts; PASSIVE ones only when their ``run`` handler is written; a DRIVER script
            decides what the router's stop requests mean (see DriverManager).
    Behaviour: instructions run between batches in the driver loop, so a handler write
        takes effect between two batches. More than 1000 jumps without blocking disables the
        script with a message.
    Handlers:
        step (write): advance a blocked ``wait``/``pause`` (an integer N: N steps).
        run (write): run the script from the start.
        goto (write): jump to a label.
        vars (read): the script's variables, NAME=VALUE per line.
    Example:
        Script(wait 1s, print c.count, loop);
    See also: DriverManager
    """

    port_count = "0/0"
    processing = "a/a"
    REST = True
    ARGS = (Arg("TYPE", Choice("ACTIVE", "PASSIVE", "DRIVER"), "ACTIVE"),)
    FINAL = "end"

    def configure(self) -> None:
        self.program: list[Instruction] = []
        self.labels: dict[str, int] = {}
        for arg in self.rest:
            for text in _instructions(arg):
                op, _, rest = text.partition(" ")
                op = op.strip()
                if op not in _KNOWN:
                    raise self.error(
                        f"unknown instruction {op!r}", "instructions: " + ", ".join(sorted(_KNOWN))
                    )
                if op == "label":
                    self.labels[rest.strip()] = len(self.program)
                if op in ("wait", "wait_time", "wait_for") and rest.strip():
                    try:
                        Seconds.parse(rest) if "$" not in rest else None
                    except ValueError as e:
                        raise self.error(f"bad time in {text!r}: {e}") from None
                self.program.append(Instruction(op, rest.strip()))
        for ins in self.program:
            if ins.op == "goto":
                target = ins.text.split()[0] if ins.text else ""
                if target not in self.labels and target not in (
                    "exit",
                    "end",
                    "stop",
                    "begin",
                    "loop",
                    "error",
                ):
                    raise self.error(f"no such label {target!r}", "declare it with 'label NAME'")
        if self.type == "DRIVER" and not self.program:
            self.program.append(Instruction("pause", ""))
        self.program.append(Instruction(self.FINAL, ""))
        self.vars: dict[str, str] = {}
        self.pc = 0
        self.waiting_steps = 0  # >0: blocked until that many steps
        self.pending_steps = 0  # steps that arrived while the script was not waiting
        self.timer_token = 0  # identifies the current timed wait
        self.done = False
        self.return_value = ""

    def initialize(self) -> None:
        assert self.router is not None
        if self.type == "DRIVER":
            if self.router.stop_listener is not None:
                raise self.error(
                    "the router has more than one DriverManager",
                    "keep one DriverManager (or Script(TYPE DRIVER))",
                )
            self.router.stop_listener = self.on_stop_request
        if self.type in ("ACTIVE", "DRIVER"):
            self.router.schedule(0.0, self.resume)

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

    def resume(self) -> None:
        """Run instructions from ``pc`` until one blocks or the script finishes."""
        jumps = 0
        assert self.router is not None
        while not self.done and self.pc < len(self.program):
            ins = self.program[self.pc]
            self.pc += 1
            op, text = ins.op, ins.text
            if op in _WAITS:
                arg = self.expand(text)
                if op in ("wait_time", "wait_for") or (op == "wait" and arg):
                    delay = Seconds.parse(arg) if arg else 0.0
                    self._token_seq = getattr(self, "_token_seq", 0) + 1
                    token = self.timer_token = self._token_seq
                    self.router.schedule(delay, lambda t=token: self._timer_fired(t))
                else:
                    try:
                        need = _STEPS.parse(arg) if arg else 1
                    except ValueError as e:
                        raise self.error(f"bad step count in '{op} {arg[:40]}': {e}") from None
                    used = min(need, self.pending_steps)
                    self.pending_steps -= used
                    if used == need:
                        continue
                    self.waiting_steps = need - used
                return
            if op in ("write", "writeq"):
                h, _, value = self.expand(text).partition(" ")
                self.router.write_handler(h, unquote(value) if op == "writeq" else value)
            elif op in ("read", "readq"):
                h = self.expand(text).split()[0]
                sys.stderr.write(f"{h}:\n{self.router.read_handler(h)}\n")
            elif op.startswith("print"):
                self._print(op, text)
            elif op in ("set", "setq", "init", "initq"):
                var, _, value = text.partition(" ")
                value = self.expand(value.strip())
                if op.endswith("q"):
                    value = unquote(value)
                if op.startswith("init") and var in self.vars:
                    continue
                self.vars[var] = value
            elif op == "label":
                continue
            elif op in ("goto", "loop"):
                jumps += 1
                if jumps > 1000:
                    sys.stderr.write(
                        f"{self.name} :: {type(self).__name__}: too many jumps, giving up\n"
                    )
                    self.done = True
                    return
                if op == "loop":
                    self.pc = 0
                    continue
                parts = text.split(None, 1)
                if len(parts) == 2 and not Bool.parse(self.expand(parts[1])):
                    continue
                target = parts[0]
                if target in ("begin", "loop"):
                    self.pc = 0
                elif target in ("exit", "end", "stop", "error"):
                    self.pc = len(self.program)
                    self._finish(target)
                    return
                else:
                    self.pc = self.labels[target]
            elif op in ("end", "exit", "stop", "return", "error"):
                if op == "return":
                    self.return_value = self.expand(text)
                if op == "error" and text:
                    sys.stderr.write(f"{self.name}: {self.expand(text)}\n")
                self._finish(op)
                return

    def _finish(self, op: str) -> None:
        self.done = True
        if op in ("stop",) and self.router is not None:
            self.router.request_stop(f"{self.name}: stop", force=True)

    def _print(self, op: str, text: str) -> None:
        assert self.router is not None
        t = text.strip()
        if t and (t[0].isalpha() or t[0] in "@_") and "." in t.split()[0]:
            value = self.router.read_handler(self.expand(t).split()[0])
        else:
            value = self.expand(t)
            value = unquote(value) if op in ("print", "printn", "printq", "printnq") else value
        newline = "" if op.startswith("printn") or value.endswith("\n") else "\n"
        sys.stdout.write(value + newline)
        sys.stdout.flush()

    def expand(self, text: str) -> str:
        def rep(m: re.Match[str]) -> str:
            if m.group(1) is not None:
                assert self.router is not None
                try:
                    return self.router.read_handler(m.group(1).strip())
                except HandlerError as e:
                    raise HandlerError(f"{self.name}: {e}") from None
            var = m.group(2) or m.group(3)
            return self.vars.get(var, m.group(0))

        return _VAR.sub(rep, text)

    # ------------------------------------------------------------------ handlers
    @write_handler("step")
    def h_step(self, value: str) -> None:
        """Advance a blocked wait by N steps (default 1)."""
        v = value.strip()
        self.step(1 if not v or v == "router" else _STEPS.parse(v))

    @write_handler("run")
    def h_run(self, _: str) -> None:
        """Run the script from the start."""
        self.pc = 0
        self.done = False
        self.waiting_steps = 0
        self.timer_token = 0
        self.resume()

    @write_handler("goto")
    def h_goto(self, label: str) -> None:
        """Jump to a label and run from there."""
        if label.strip() not in self.labels:
            raise ValueError(f"no such label {label.strip()!r}")
        self.pc = self.labels[label.strip()]
        self.done = False
        self.waiting_steps = 0
        self.timer_token = 0
        self.resume()

    @read_handler("vars")
    def h_vars(self) -> str:
        """Script variables, NAME=VALUE per line."""
        return "\n".join(f"{k}={v}" for k, v in sorted(self.vars.items()))


class DriverManager(Script):
    """Manages the router's stop requests with a script (Click's DriverManager).

    Ports: none.
    Arguments:
        INSTRUCTION... (positional): as for Script. ``wait``/``wait_stop [N]``/``pause`` wait
            for N stop requests (a source with STOP true finishing, every source done, the
            global ``stop`` handler, a Script's ``stop``); ``wait TIME`` sleeps (a stop
            request also ends the sleep); ``write``, ``read``, ``print``, ``stop`` as in
            Script. An implicit ``stop`` ends the list.
    Behaviour: without a DriverManager the first stop request stops the router; with one,
        stop requests step its script, and the router stops when the script reaches
        ``stop`` (or its end). At most one per router.
    Handlers:
        step (write): advance the script as a stop request would.
        run, goto (write), vars (read): as for Script.
    Example:
        DriverManager(wait_stop, read c.count, write c.reset, wait 10ms, stop);
    See also: Script
    """

    ARGS = (Arg("TYPE", Choice("ACTIVE", "PASSIVE", "DRIVER"), "DRIVER"),)
    FINAL = "stop"


def _instructions(arg: str) -> list[str]:
    """One argument may hold one instruction (Click); allow newline-separated ones too."""
    return (
        [" ".join(unquote_line.split()) for unquote_line in arg.split("\n") if unquote_line.strip()]
        if "\n" in arg
        else [arg]
        if arg.strip()
        else []
    )
