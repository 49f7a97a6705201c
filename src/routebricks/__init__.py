"""routebricks: a parallel software router in Python, after RouteBricks (SOSP 2009).

The public API for building routers in Python and writing elements::

    from routebricks import Router
    from routebricks.elements import FromDump, Classifier, Counter, ToDump

    src = FromDump("in.pcap")
    src >> Classifier("12/0800") >> Counter(name="c") >> ToDump("out.pcap")
    Router.from_elements(src).run()
"""

from routebricks.engine.args import (
    Arg,
    Bool,
    Bytes,
    Double,
    EtherAddress,
    Int,
    IPAddress,
    IPPrefix,
    PosInt,
    Seconds,
    String,
    UInt,
    Word,
)
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, RouteBricksError
from routebricks.packet.batch import PacketBatch

__version__ = "0.1.0"
__all__ = [
    "Arg", "Bool", "Bytes", "ConfigError", "Double", "Element", "EtherAddress", "IPAddress",
    "IPPrefix", "Int", "PacketBatch", "PosInt", "RouteBricksError", "Router", "Seconds",
    "String", "UInt", "Word", "read_handler", "write_handler",
]
