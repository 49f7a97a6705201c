"""Switch: sends every packet to one output, chosen by a handler."""

from __future__ import annotations

from routebricks.engine.args import Arg, IntRange
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

#: OUTPUT values: Click's int (negative: drop everything).
OutputNumber = IntRange(-(2**31), 2**31 - 1, "output number")


class Switch(Element):
    """Sends every packet to output OUTPUT, which a handler can change.

    Ports: 1 push input; any number of push outputs.
    Arguments:
        OUTPUT (integer, positional, default 0): the output packets leave by; negative
            means drop them. An OUTPUT that is not less than the number of outputs is a
            configuration error ("output must be < N").
    Behaviour: the whole batch goes to output OUTPUT, untouched. While OUTPUT is negative
        packets are dropped and counted as "switched off" (Click kills them silently).
    Handlers:
        switch (read/write): OUTPUT. A write takes any 32-bit integer; one not less than
            the number of outputs becomes -1, as in Click; anything else is refused
            ("Switch output must be integer").
        config (read): OUTPUT now, as Click's Switch answers it.
    Example:
        src :: FromDevice(eth0) -> sw :: Switch(0);
        sw[0] -> ToDevice(eth1);
        sw[1] -> ToDump(tapped.pcap);
        // routebricks handler write sw.switch 1
    See also: PaintSwitch, HashSwitch, RoundRobinSwitch, RandomSwitch
    """

    port_count = "1/-"
    processing = "h/h"
    ARGS = (Arg("OUTPUT", OutputNumber, 0, positional=True),)

    def initialize(self) -> None:
        # The number of outputs is known once the graph is checked, after configure().
        if self.output >= self.noutputs:
            raise self.error(f"output must be < {self.noutputs}",
                             "connect more outputs, or choose a smaller OUTPUT")

    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        out = self.output
        if out < 0 or out >= self.noutputs:
            self.drop(batch, "switched off")
        else:
            self.emit(out, batch)

    @read_handler("switch")
    def h_switch(self) -> int:
        """OUTPUT: the output packets leave by (negative: dropped)."""
        return self.output

    @write_handler("switch")
    def h_set_switch(self, value: str) -> None:
        """Set OUTPUT; one past the last output means -1 (drop)."""
        try:
            out = OutputNumber.parse(value)
        except ValueError:
            raise ValueError("Switch output must be integer") from None
        self.output = -1 if out >= self.noutputs else out

    @read_handler("config")
    def h_config(self) -> int:
        """OUTPUT now (Click's Switch answers its config handler so)."""
        return self.output
