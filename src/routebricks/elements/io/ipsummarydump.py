"""FromIPSummaryDump and ToIPSummaryDump: Click's IP summary dump, a text trace format."""

from __future__ import annotations

import bz2
import gzip
import io
import math
import os
import socket
import sys
import time
from typing import BinaryIO, TextIO

import numpy as np

from routebricks.engine import clock
from routebricks.engine.args import Arg, Bool, Double, Filename, IntRange, PosInt, Raw, String
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.engine.source import MEMORY_KP, Source
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ipsumdump import ReadContext, finish_packet, parse_line, parse_record
from routebricks.packet.ipsumdump_binary import WIDTH, DumpReader
from routebricks.packet.ipsumdump_fields import (
    FIELDS,
    MAJOR_VERSION,
    MINOR_VERSION,
    IPSumDumpError,
    field_list,
    parse_int,
    parse_ip,
    split_words,
)
from routebricks.packet.ipsumdump_write import find_ip, header, summarize, summarize_binary

_PROTO_NAMES = {"T": 6, "U": 17, "I": 1, "tcp": 6, "udp": 17, "icmp": 1}


class FromIPSummaryDump(Source):
    """Reads packets from an IP summary dump (Click's trace format, text or binary).

    Ports: no inputs; 1 output (push, or pull when connected to a pull input).
    Arguments:
        FILENAME (string, positional): the dump (`-` is standard input; gzip and bzip2
            files are uncompressed). Required unless DATA is given.
        DATA (string): read the dump from this text instead of a file.
        STOP (bool, default false): stop the router when the dump is done.
        ACTIVE (bool, default true): whether to send packets.
        BURST (positive integer, default --kp, else 4096), LIMIT (integer, default -1):
            packets per batch; send at most this many packets (-1: all).
        ZERO (bool, default true): bytes the dump does not set are zero (false: random).
        CHECKSUM (bool, default false, as Click's): grow each packet to its IP length and
            set its IP, TCP, UDP and ICMP checksums; give CHECKSUM true for packets that
            CheckIPHeader and the hosts accept (see Behaviour).
        TIMING (bool, default false): send each packet at its timestamp's offset from the
            first packet, instead of as fast as possible.
        SAMPLE (real in [0, 1], default 1): keep each packet with this probability.
        PROTO (0 to 255, default 6): the IP protocol when the dump gives none.
        MULTIPACKET (bool, default false): a line with count N gives N packets, their
            timestamps spread from first_timestamp to timestamp.
        CONTENTS, FIELDS, DEFAULT_CONTENTS, DEFAULT_FIELDS (string): the fields of lines
            before any `!data` line (see ToIPSummaryDump for the names).
        FLOWID, DEFAULT_FLOWID (string): `SRC SPORT DST DPORT [PROTO]`, addresses and ports
            of packets whose line gives none (as a `!flowid` line).
    Behaviour: each line describes one packet; `!data FIELDS` names the fields of the
        lines after it, `!proto P` and `!flowid ...` set defaults, `!IPSummaryDump 1.x`
        the format version (1.0 gives fragment offsets in 8-byte units); other `!` lines
        and `#` comments are skipped. After a `!binary` line the file is binary records,
        as ToIPSummaryDump(BINARY true) and Click write them (each a 4-byte length, then
        the `!data` fields at fixed widths; text records hold `!` and `#` lines).
        Fields and their text are ToIPSummaryDump's, TCP and IP options included
        (`mss1460;wscale7;sackok;ts5:0`, `nop` and `eol` read too). A missing value or
        `-` leaves a field zero (TTL 100, protocol PROTO, IP length from the headers and
        payload); a line with no IP field (only annotations or Ethernet fields) gives a
        packet without IP header, as Click's. Packets are valid IPv4 with correct
        checksums (CHECKSUM true), or, with CHECKSUM false, as Click makes them: as long
        as the data given, checksums as the dump says. The network header (nh),
        timestamp, paint (link, direction), dst_ip, extra_packets (count) and extra_length
        (the IP or wire length beyond the bytes made) annotations are set. A line or
        record of which no field can be read is skipped, counted as a drop ("bad line")
        and, the first time, reported as FILE:LINE (FILE: record N) on standard error, as
        Click does; unknown field names are reported once. A malformed binary record (a
        length under 4, or cut short by the end of the file) is reported with the file,
        the record's number and its byte offset, counted as a drop ("bad record"), and
        ends the file; no more than 1 MiB of a record is held, whatever its length says.
        Unlike Click, a payload goes after headers the IP length made grow, and
        `ts_usec1` and `ip_frag` read back from binary as written. A missing file is a
        configuration error.
    Handlers:
        count (read): packets sent.
        active (read/write): whether to send.
        encap (read): "IP".
        sampling_prob (read): the SAMPLE probability.
        filesize (read): the file's size in bytes ("-" for a pipe or DATA).
        stop (write): stop sending and stop the router.
        reset (write): zero the count (a LIMIT starts again).
    Example:
        FromIPSummaryDump(in.ipsum, STOP true) -> CheckIPHeader -> ToDump(out.pcap, ENCAP IP);
    See also: ToIPSummaryDump, FromDump
    """

    MEMORY_KP = MEMORY_KP
    DROPS = {"bad line": "a line or binary record no field of which could be read",
             "bad record": "a malformed binary record; the rest of the file is not read"}
    port_count = "0/1"
    processing = "/a"
    ARGS = (
        Arg("FILENAME", Filename, None, positional=True),
        *Source.SOURCE_ARGS,
        Arg("DATA", String, None),
        Arg("ZERO", Bool, True),
        Arg("CHECKSUM", Bool, False),
        Arg("TIMING", Bool, False),
        Arg("SAMPLE", Double, 1.0),
        Arg("PROTO", IntRange(0, 255, "IP protocol"), 6),
        Arg("MULTIPACKET", Bool, False),
        Arg("CONTENTS", Raw, None),
        Arg("FIELDS", Raw, None),
        Arg("DEFAULT_CONTENTS", Raw, None),
        Arg("DEFAULT_FIELDS", Raw, None),
        Arg("FLOWID", String, None),
        Arg("DEFAULT_FLOWID", String, None),
    )

    def configure(self) -> None:
        super().configure()
        if not 0.0 <= self.sample <= 1.0:
            raise self.error(f"SAMPLE {self.sample} is not a probability", "give 0 to 1")
        if (self.filename is None) == (self.data is None):
            raise self.error("give FILENAME or DATA" if self.filename is None
                             else "FILENAME and DATA conflict")
        spec = self.contents or self.fields or self.default_contents or self.default_fields
        self._default_fields = self._field_names(spec, "CONTENTS") if spec else ([], [])
        self._default_flowid = self.flowid or self.default_flowid
        self._file: BinaryIO | None = None

    # ------------------------------------------------------------------ the file
    def _field_names(self, text: str, where: str) -> tuple[list[str | None],
                                                           list[str | None]]:
        """The fields of a CONTENTS string or `!data` line: (the fields read, None where a
        field is unknown or has no meaning on input (reported); the known names, which lay
        out a binary record)."""
        names: list[str | None] = []
        layout: list[str | None] = []
        for w in split_words(text):
            if not names and w in ("!data", "!contents"):
                continue
            f = field_list(w)[0]
            if not f:
                self._warn_at(where, f"unknown content type {w!r}")
            elif FIELDS.get(f[0]) is None:
                self._warn_at(where, f"content type {f[0]!r} ignored on input")
            names.append(f[0] if f and FIELDS.get(f[0]) is not None else None)
            layout.append(f[0] if f else None)
        return names, layout

    def _warn_at(self, where: str, message: str) -> None:
        self.warn(f"{where}: {message}")

    def _open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data.encode("latin-1", "replace"))
        if self.filename == "-":
            return sys.stdin.buffer
        path = self.resolve_path(self.filename)
        try:
            with open(path, "rb") as f:
                magic = f.read(3)
            if magic[:2] == b"\x1f\x8b":
                return gzip.open(path)  # type: ignore[return-value]
            if magic == b"BZh":
                return bz2.open(path)  # type: ignore[return-value]
            return open(path, "rb")  # noqa: SIM115 - closed in cleanup
        except OSError as e:
            raise self.error(f"{self.filename}: {e.strerror or e}",
                             "check the file name") from None

    def initialize(self) -> None:
        self._close()
        self._file = self._open()
        self._where = "DATA" if self.data is not None else self.filename
        self._reader = DumpReader(self._file, self._where)
        self._fields: list[str | None] = list(self._default_fields[0])
        self._layout: list[str | None] = list(self._default_fields[1])
        self._ctx = ReadContext(proto=self.proto)
        if self._default_flowid:
            self._bang_flowid("!flowid " + self._default_flowid, "FLOWID")
        self._pending: list[tuple[bytes, dict[str, int]]] = []
        self._done = False
        self._complained = False
        self._t0_wall: float | None = None
        self._t0_ts = 0
        self._rng = np.random.default_rng()

    def _close(self) -> None:
        if self._file is not None and self._file is not sys.stdin.buffer:
            self._file.close()
        self._file = None

    def cleanup(self) -> None:
        self._close()

    # ------------------------------------------------------------------ lines
    def _bang_flowid(self, line: str, where: str) -> None:
        w = line.split()
        ports = [parse_int(x, 1 << 16) if x != "-" else 0 for x in w[2:5:2]]
        addrs = [parse_ip(x) if x != "-" else 0 for x in w[1:4:2]]
        if len(w) < 5 or None in ports or None in addrs:
            self._warn_at(where, "bad !flowid specification")
            return
        self._ctx.flowid = (addrs[0], ports[0], addrs[1], ports[1])  # type: ignore[assignment]
        if len(w) >= 6:
            self._bang_proto(w[:1] + w[5:6], where)

    def _bang_proto(self, words: list[str], where: str) -> None:
        p = _PROTO_NAMES.get(words[1]) if len(words) == 2 else None
        if p is None and len(words) == 2:
            p = parse_int(words[1], 256)
        if p is None:
            self._warn_at(where, "bad protocol in !proto")
        else:
            self._ctx.proto = p

    def _bang(self, line: str, where: str) -> None:
        words = line.split()
        key = words[0] if words else ""
        if key in ("!data", "!contents"):
            self._fields, self._layout = self._field_names(line, where)
        elif key == "!binary":
            if len(words) != 1:
                self._warn_at(where, "bad !binary specification")
            self._reader.start_binary()
        elif key == "!proto":
            self._bang_proto(words, where)
        elif key == "!flowid":
            self._bang_flowid(line, where)
        elif key == "!IPSummaryDump" and len(words) > 1:
            major, _, minor = words[1].partition(".")
            if major != str(MAJOR_VERSION) or not minor.isdigit() or int(minor) > MINOR_VERSION:
                self._warn_at(where, f"unexpected IPSummaryDump version {words[1]}")
            else:
                self._ctx.minor_version = int(minor)

    def _packets_from(self, item: str | bytes, where: str) -> list[tuple[bytes, dict[str, int]]]:
        """The packets of a text line (str) or a binary record's data (bytes)."""
        try:
            if isinstance(item, bytes):
                pkt = parse_record(item, self._fields, self._ctx, self._layout)
            else:
                pkt = parse_line(item, self._fields, self._ctx)
        except IPSumDumpError as e:
            self.drop(1, "bad line")
            if not self._complained:
                self._complained = True
                why = "no '!data' provided" if not self._fields else str(e)
                self._warn_at(where, f"{why} (later bad lines are counted as drops, silently)")
            return []
        extra = max(0, len(pkt.data) - pkt.nhoff)
        pad = None if self.zero else self._rng.bytes(0xFFFF + extra)
        data = finish_packet(pkt, pad) if self.checksum else pkt.data
        if pkt.extra_length(data):
            pkt.annos["extra_length"] = pkt.extra_length(data)
        n = pkt.count if self.multipacket else 1
        if n <= 1:
            return [(data, pkt.annos)]
        end = pkt.annos.get("timestamp", 0)
        first = pkt.annos.get("first_timestamp", 0)
        step = _ts_step(first, end, n)
        out = []
        for i in range(n):
            a = dict(pkt.annos, extra_packets=0)
            a["timestamp"] = end if i == n - 1 else (first + i * step if first else end)
            out.append((data, a))
        return out

    def _fill(self, want: int) -> None:
        while len(self._pending) < want and not self._done:
            try:
                nxt = self._reader.next()
            except IPSumDumpError as e:  # a malformed binary record: the rest is lost
                self.drop(1, "bad record")
                print(f"{self.name}: {e}; the rest of the file is not read", file=sys.stderr)
                nxt = None
            if nxt is None:
                self._done = True
                break
            kind, item, where = nxt
            if kind == "line":
                line = item.rstrip("\r\n")  # type: ignore[union-attr]
                stripped = line.strip()
                if not stripped or stripped[0] == "#":
                    continue
                if line[0] == "!":
                    self._bang(line, where)
                    continue
                item = line
            pkts = self._packets_from(item, where)
            if self.sample < 1.0:
                pkts = [p for p in pkts if self._rng.random() < self.sample]
            self._pending += pkts

    def _next_batch(self) -> PacketBatch | None:
        if not self.active:
            return None
        self._fill(self.kp)
        if not self._pending:
            return None
        want = len(self._pending)
        if self.timing:
            ts = [a.get("timestamp", 0) for _, a in self._pending]
            now = clock.monotonic()
            if self._t0_wall is None:
                self._t0_wall, self._t0_ts = now, ts[0]
            due = self._t0_ts + int((now - self._t0_wall) * 1e9)
            want = int(np.searchsorted(np.array(ts), due, side="right"))
        n = self.allowance(want)
        if n <= 0:
            return None
        take, self._pending = self._pending[:n], self._pending[n:]
        b = PacketBatch.from_bytes([d for d, _ in take])
        for name in sorted({k for _, a in take for k in a}):
            if name == "nh":  # the IP header's offset in the packet: where it is in the pool
                rel = np.array([a.get("nh", -1) for _, a in take], np.int64)
                b.anno("nh")[:] = np.where(rel >= 0, b.off + rel, -1)
            else:
                b.anno(name)[:] = [a.get(name, 0) for _, a in take]
        return b

    def finished(self) -> bool:
        return self._done and not self._pending

    def wants_task(self) -> bool:
        return self.output_modes[0] == "h" if self.output_modes else False

    def run_task(self) -> bool:
        b = self._next_batch()
        if b is not None:
            self.send(b)
        self.maybe_stop()
        return b is not None

    def pull(self, port: int) -> PacketBatch | None:
        b = self._next_batch()
        if b is not None:
            self.emitted += len(b)
        self.maybe_stop()
        return b

    @read_handler("encap")
    def h_encap(self) -> str:
        """The packets' encapsulation: IP."""
        return "IP"

    @read_handler("sampling_prob")
    def h_sampling_prob(self) -> float:
        """The SAMPLE probability."""
        return self.sample

    @read_handler("filesize")
    def h_filesize(self) -> int | str:
        """The file's size in bytes ("-" for a pipe or DATA)."""
        if self.data is not None or self.filename == "-":
            return "-"
        try:
            return os.path.getsize(self.resolve_path(self.filename))
        except OSError:
            return "-"

    @write_handler("stop")
    def h_stop(self, _: str) -> None:
        """Stop sending and stop the router."""
        self.active = False
        if self.router is not None:
            self.router.request_stop(f"{self.name}.stop")


def _ts_step(first: int, end: int, count: int) -> int:
    """Nanoseconds between the timestamps of ``count`` packets from ``first`` to ``end``
    (0 without a first timestamp), divided as Click's Timestamp: a double of seconds,
    rounded to the nanosecond."""
    if not first or count <= 1:
        return 0
    d = (end - first) / 1e9 / (count - 1)
    whole = math.floor(d)
    return whole * 1_000_000_000 + int((d - whole) * 1e9 + 0.5)


def _multipacket(annos: dict[str, int], length: int, split: bool) -> list[dict[str, int]]:
    """The annotations of the lines a packet gives: one, or with MULTIPACKET one a packet
    it counts, as Click's: timestamps stepped from first_timestamp, the length (its bytes
    and extra length) shared out."""
    count = 1 + annos.get("extra_packets", 0)
    if not split or count <= 1:
        return [annos]
    total = max(length + annos.get("extra_length", 0), count * length)
    first, end = annos.get("first_timestamp", 0), annos.get("timestamp", 0)
    step = _ts_step(first, end, count)
    out = []
    for i in range(count, 0, -1):
        share = total // i
        total -= share
        out.append(dict(annos, extra_packets=0, extra_length=share - length,
                        timestamp=(first if first else end) + (count - i) * step))
    return out


class ToIPSummaryDump(Element):
    """Writes a line or binary record of fields for each packet: Click's IP summary dump.

    Ports: 1 input (agnostic); 0 or 1 outputs. Pulling with no output, it is a task that
    pulls BURST packets per call.
    Arguments:
        FILENAME (string, positional, required): the dump to write (`-` is standard output).
        CONTENTS, FIELDS (string, default "timestamp ip_src"): space-separated field names:
            timestamp (ts, utimestamp), ntimestamp, ts_sec (sec), ts_usec (usec), ts_usec1,
            first_timestamp, ip_src (src), ip_dst (dst), ip_proto (proto; T, U, I or a
            number), ip_len (len), ip_id, ip_ttl, ip_tos, ip_dscp, ip_ecn, ip_hl, ip_sum,
            ip_frag (F first fragment, f later one, ! DF, . none), ip_fragoff (0, 8+, 0!),
            ip_opt (rr{...}, ssrr{...}, lsrr{...}, ts{...}, 99=1:2), ip_capture_len, sport,
            dport, tcp_seq, tcp_ack, tcp_flags (FSRPAUECN), tcp_off, tcp_window, tcp_urp,
            tcp_opt (TCP options: mss1460, wscale7, sackok, sack95-98 a block, ts5:0,
            99=0:5:10 another kind, joined by `;`; `.` none, `?` malformed), tcp_ntopt
            (all but timestamps; `.` also for just NOP NOP timestamp), tcp_sack (sackok
            and sack blocks), udp_len, icmp_type, icmp_code, icmp_type_name,
            icmp_code_name, icmp_flowid, icmp_seq, icmp_nextmtu, payload (a quoted
            string), payload_len, payload_md5, payload_md5_hex, count, link (paint),
            direction (> or < for paint 0 or 1), aggregate, wire_len, eth_src, eth_dst,
            eth_type. A space may stand for the first underscore ("tcp seq", quoted), and
            `ip_` may be left out (src, len).
        HEADER (bool, default true): start with the `!IPSummaryDump` and `!data` lines.
        BANNER (string): a `!creator "BANNER"` line after the first.
        VERBOSE (bool, default false): also `!host` and `!runtime` lines.
        MULTIPACKET (bool, default false): a packet whose count annotation is N gives N
            lines (unless the fields include count), their timestamps stepped from
            first_timestamp, its length and extra length shared among them.
        BINARY (bool, default false): after the header and a `!binary` line, a binary
            record a packet, byte for byte as Click writes it (a 4-byte length, then each
            field at its fixed width, big-endian; option fields a length byte and the
            bytes; ip_opt and tcp_opt, as in Click, then a second copy that
            FromIPSummaryDump skips and C++ Click does not: put them last for C++ Click to
            read the file). payload has no binary form (a configuration error).
        EXTRA_LENGTH (bool, default true): ip_len and payload_len count the extra-length
            annotation (set by Truncate): bytes the packet stood for beyond those it has.
        BURST (positive integer, default 4096): packets per pull when it is a task.
    Behaviour: a field that does not apply to a packet (sport of an ICMP packet, IP fields
        of a non-IP frame) is `-`. The IP header is found by the network-header
        annotation; without one, at the packet's start if it is IPv4, else after an
        Ethernet header of type IPv4. Ethernet fields need the IP header 14 bytes in.
        Timestamps have 6 decimals, or 9 when they have nanoseconds. Text and binary are
        byte for byte C++ Click's (built with nanosecond timestamps) but where it errs:
        text ts_usec1 is the timestamp in microseconds (Click swaps its 32-bit halves),
        an empty payload is "" where Click reads past a truncated packet, and MULTIPACKET
        with count in the fields gives one line (Click ignores count). Lines are written
        at once, flushed when the router stops. In push mode packets then continue on
        output 0 if it is connected.
    Handlers:
        count (read): lines written.
        filename (read): the file name.
        flush (write): flush the file.
    Example:
        FromDump(in.pcap, STOP true) -> ToIPSummaryDump(-, CONTENTS ts src dst proto sport dport);
        FromDump(in.pcap) -> ToIPSummaryDump(out.bin, CONTENTS ts src tcp_opt, BINARY true);
    See also: FromIPSummaryDump, ToDump, Print
    """

    SINGLE_PROCESS = True  # one file: not written by several workers at once
    port_count = "1/0-1"
    processing = "a/a"
    ARGS = (
        Arg("FILENAME", Filename, positional=True, required=True),
        Arg("CONTENTS", Raw, None),
        Arg("FIELDS", Raw, None),
        Arg("HEADER", Bool, True),
        Arg("BANNER", String, None),
        Arg("VERBOSE", Bool, False),
        Arg("MULTIPACKET", Bool, False),
        Arg("BINARY", Bool, False),
        Arg("EXTRA_LENGTH", Bool, True),
        Arg("BURST", PosInt, 4096),
    )

    def configure(self) -> None:
        spec = self.contents or self.fields or "timestamp ip_src"
        self.names, unknown = field_list(spec)
        if unknown:
            raise self.error("unknown content type " + ", ".join(map(repr, unknown)),
                             "see `routebricks elements ToIPSummaryDump` for field names")
        if not self.names:
            raise self.error("no contents specified")
        no_binary = [f for f in self.names if f not in WIDTH]
        if self.binary and no_binary:
            raise self.error(f"cannot use field {no_binary[0]} with BINARY",
                             "leave it out, or write text (BINARY false)")
        if "count" in self.names:
            self.multipacket = False
        self.count = 0
        self._out: TextIO | BinaryIO | None = None

    def initialize(self) -> None:
        if self.filename == "-":
            if self.binary:
                sys.stdout.flush()
            self._out = sys.stdout.buffer if self.binary else sys.stdout
        else:
            try:
                self._out = open(self.filename, "wb" if self.binary else "w",  # noqa: SIM115
                                 **({} if self.binary else {"encoding": "latin-1"}))
            except OSError as e:
                raise self.error(f"{self.filename}: {e.strerror or e}") from None
        if self.header:
            extra = []
            if self.verbose:
                now = time.time()
                extra = [f"!host {socket.gethostname()}",
                         f"!runtime {now:.6f} ({time.ctime(now)})"]
            text = header(self.names, self.banner, extra, self.binary)
            self._out.write(text.encode("latin-1", "replace") if self.binary  # type: ignore[arg-type]
                            else text)

    def cleanup(self) -> None:
        if self._out is not None:
            self._out.flush()
            if self._out not in (sys.stdout, sys.stdout.buffer):
                self._out.close()
        self._out = None

    def _write(self, batch: PacketBatch) -> None:
        assert self._out is not None
        nh = batch.anno_or_none("nh")
        names = [k for k in ("timestamp", "first_timestamp", "paint", "extra_packets",
                             "aggregate", "extra_length") if k in batch.annos]
        cols = {k: batch.annos[k].tolist() for k in names}
        write = summarize_binary if self.binary else summarize
        out: list = []
        for i in range(len(batch)):
            pkt = batch.packet(i)
            pos = int(nh[i] - batch.off[i]) if nh is not None and nh[i] >= 0 else find_ip(pkt)
            annos = {k: int(v[i]) for k, v in cols.items()}
            for a in _multipacket(annos, len(pkt), self.multipacket):
                out.append(write(pkt, pos, a, self.names, self.extra_length))
        self.count += len(out)
        if out and self.binary:
            self._out.write(b"".join(out))  # type: ignore[arg-type]
        elif out:
            self._out.write("\n".join(out) + "\n")  # type: ignore[arg-type]

    def push(self, port: int, batch: PacketBatch) -> None:
        self._write(batch)
        if self.noutputs:
            self.emit(0, batch)

    def pull(self, port: int) -> PacketBatch | None:
        b = self.pull_input(0)
        if b is not None:
            self._write(b)
        return b

    def wants_task(self) -> bool:
        return bool(self.input_modes) and self.input_modes[0] == "l" and not self.noutputs

    def run_task(self) -> bool:
        b = self.pull_input(0)
        if b is None:
            return False
        self._write(b)
        return True

    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Lines written."""
        return self.count

    @read_handler("filename")
    def h_filename(self) -> str:
        """The file name."""
        return self.filename

    @write_handler("flush")
    def h_flush(self, _: str) -> None:
        """Flush the file."""
        if self._out is not None:
            self._out.flush()
