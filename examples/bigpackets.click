// Uses the CountBig element written in Python in my_elements.py (path relative to this file).
require(python "my_elements.py");

FromDump(data/sample.pcap, STOP true) -> b :: CountBig(500) -> Discard;
