"""Helpers shared by the tests of the Ethernet elements (not a test module): the common
ones, from tests/elements/elementtest.py."""

from elementtest import batch_of, q, read_frames, run_elements, run_text, write_pcap

__all__ = ["batch_of", "q", "read_frames", "run_elements", "run_text", "write_pcap"]
