"""Harness of the host link (:class:`mxhw.soc.link.HostLink`) against its contract,
``soc/PROTOCOL.md``, for every timing of a given request stream.

The requests are concrete packets built by the host side's own encoder
(``mxhw.soc.protocol.request``); what is free is *when* each byte arrives (any gap from 0,
back to back, up to ``gap`` cycles: below the watchdog, so no packet legitimately times
out) and when the transmitter takes a response byte (``tx.ready`` low at most ``stall``
cycles in a row), and the bus read data. Asserted:

* **bus writes**: the n-th bus write is the n-th word of the WRITE requests of the stream,
  at its address: a payload byte parsed as a header (an inner packet executed) shows as a
  write the stream does not contain;
* **responses**: the n-th transmitted byte is the n-th byte of the expected responses (one
  per request, in order: status OK, no payload, CRC by ``protocol.crc16``), and no more;
* **exactly one response each, in bounded time**: ``bound`` cycles after the stream's last
  byte, every response has been sent.

``mxhw.formal`` is a tool at the top of the layering (as ``mxhw.build``): it imports
``mxhw.soc`` when a link proof is built, never at import time.
"""

from __future__ import annotations

import struct

from amaranth.hdl import Assert, Assume, ClockDomain, Module, Mux, Signal

from .base import Harness

__all__ = ["LinkContract", "MAX_PAYLOAD", "expected_response", "ping_answer", "ping_stream", "nested_write_stream",
           "bad_write_stream", "stream_depth"]


#: the harness's link: ``HostLink(MAX_PAYLOAD, ...)`` with its default receive buffer
MAX_PAYLOAD = 16


def expected_response(status=0, payload=b"", seq=0):
    """A response packet as PROTOCOL.md (version 2) defines it (sync, status, seq, len,
    payload, CRC), written here from the document, not with the host's encoder."""
    from ..soc import protocol as P
    body = struct.pack("<BBH", status, seq, len(payload)) + payload
    return bytes([P.SYNC_RESP]) + body + struct.pack("<H", P.crc16(body))


def ping_answer(seq):
    """A PING's response: status OK and the link information word (max_payload, the
    protocol version, log2 of the receive buffer's bytes)."""
    from ..soc import protocol as P
    from ..soc.link import default_rx_depth
    rx = default_rx_depth(MAX_PAYLOAD)
    info = MAX_PAYLOAD | P.PROTOCOL_VERSION << 16 | (rx.bit_length() - 1) << 24
    return expected_response(0, struct.pack("<I", info), seq)


def ping_stream(n):
    """``n`` PINGs: requests, expected responses, expected bus writes (none)."""
    from ..soc import protocol as P
    return ([P.request(P.Cmd.PING, seq=i) for i in range(n)],
            [ping_answer(i) for i in range(n)], [])


def nested_write_stream(addr=0x100, inner_addr=0x40, inner_word=0x0BADF00D):
    """A PING, then a WRITE whose 16-byte payload is itself a WRITE packet of one word
    (padded with zeros): finding 2 of issue #31. Only the outer WRITE may be executed."""
    from ..soc import protocol as P
    inner = P.request(P.Cmd.WRITE, inner_addr, payload=struct.pack("<I", inner_word))
    payload = inner + bytes(16 - len(inner))
    outer = P.request(P.Cmd.WRITE, addr, payload=payload, seq=1)
    words = struct.unpack("<4I", payload)
    writes = [((addr >> 2) + i, w) for i, w in enumerate(words)]
    return ([P.request(P.Cmd.PING), outer], [ping_answer(0), expected_response(seq=1)],
            writes)


def bad_write_stream(kind):
    """One WRITE of a word that must write nothing: ``"crc"`` (its CRC off by one: answered
    BAD_CRC) or ``"len"`` (length 5: answered BAD_LEN); either once the line is quiet."""
    from ..soc import protocol as P
    if kind == "crc":
        pkt = bytearray(P.request(P.Cmd.WRITE, 0x100, payload=struct.pack("<I", 0x12345678)))
        pkt[-2] ^= 1
        return [bytes(pkt)], [expected_response(P.Status.BAD_CRC)], []
    pkt = P.request(P.Cmd.WRITE, 0x100, length=5, payload=bytes(5))
    return [pkt], [expected_response(P.Status.BAD_LEN)], []


class LinkContract(Harness):
    """``HostLink(max_payload, timeout_cycles=16, quiet_cycles=16)`` fed ``requests`` (a
    list of packets) with any timing (see the module docstring); ``responses`` and
    ``writes`` (``(word address, word)``) are what the link must produce; every response
    must be out :func:`default_bound` ``+ extra`` cycles after the last request byte
    (``extra``: a bad header's quiet time).
    ``parts``: what is asserted (``"writes"``, ``"responses"``, ``"live"``: the three
    bullets above). ``dut``: the link (a test passes a mutant)."""

    RESET = 2       # cycles of reset at the start (the link needs one: soc/link.py)

    def __init__(self, requests, responses, writes, *, gap=2, stall=1, extra=0,
                 max_payload=MAX_PAYLOAD, parts=("writes", "responses", "live"), dut=None):
        from ..soc.link import HostLink
        super().__init__()
        self.cd = ClockDomain("sync")       # with a reset: the link's state needs one
        self.stream = b"".join(requests)
        self.resp = b"".join(responses)
        self.writes = list(writes)
        self.gap, self.stall, self.parts = gap, stall, parts
        self.timeout = 16
        if gap >= self.timeout:
            raise ValueError(f"gap must be below the watchdog ({self.timeout}), not {gap}")
        self.bound = default_bound(responses, self.writes, stall) + extra
        self.dut = dut or HostLink(max_payload=max_payload, timeout_cycles=self.timeout,
                                   quiet_cycles=16)
        self.rx_valid = Signal()
        self.tx_ready = Signal()
        self.r_data = Signal(32)

    def inputs(self):
        return [self.rx_valid, self.tx_ready, self.r_data]

    def ports(self):
        return [self.cd.clk, *self.inputs()]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd
        m.submodules.dut = dut = self.dut
        # reset: the first RESET cycles
        age = Signal(range(self.RESET + 1), reset_less=True)
        with m.If(age != self.RESET):
            m.d.sync += age.eq(age + 1)
        m.d.comb += self.cd.rst.eq(age != self.RESET)
        run = age == self.RESET

        # the host: the stream's bytes in order, any gap up to `gap` cycles
        n = len(self.stream)
        sent = Signal(range(n + 1), reset_less=True)
        idle = Signal(range(self.gap + 2), reset_less=True)
        more = sent != n
        byte = Signal(8)
        with m.Switch(sent):
            for i, b in enumerate(self.stream):
                with m.Case(i):
                    m.d.comb += byte.eq(b)
        send = Signal()
        m.d.comb += [send.eq(self.rx_valid & more & run),
                     dut.rx.valid.eq(send), dut.rx.payload.eq(byte)]
        with m.If(send):
            m.d.sync += [sent.eq(sent + 1), idle.eq(0)]
        with m.Elif(run & more & (idle != self.gap + 1)):
            m.d.sync += idle.eq(idle + 1)
        m.d.comb += Assume(idle <= self.gap)
        m.d.comb += Assert(dut.rx.ready | ~send, "rx never back-pressures (a UART)")

        # the response side: tx.ready low at most `stall` cycles in a row
        low = Signal(range(self.stall + 2), reset_less=True)
        m.d.sync += low.eq(Mux(self.tx_ready, 0, low + 1))
        m.d.comb += [Assume(low <= self.stall), dut.tx.ready.eq(self.tx_ready)]
        m.d.comb += dut.bus.r_data.eq(self.r_data)

        # responses: byte for byte, never more
        r = len(self.resp)
        got = Signal(range(r + 2), reset_less=True)
        want = Signal(8)
        with m.Switch(got):
            for i, b in enumerate(self.resp):
                with m.Case(i):
                    m.d.comb += want.eq(b)
        tx_fire = dut.tx.valid & dut.tx.ready & run
        with m.If(tx_fire):
            m.d.sync += got.eq(got + 1)
        with m.If(tx_fire & ("responses" in self.parts)):
            m.d.comb += [Assert(got < r, "no response beyond one per request"),
                         Assert(dut.tx.payload == want, "response bytes as expected")]

        # bus writes: in order, only the WRITE requests' words
        w = len(self.writes)
        wn = Signal(range(w + 2), reset_less=True)
        with m.If(dut.bus.w_en & run):
            m.d.sync += wn.eq(wn + 1)
        with m.If(dut.bus.w_en & run & ("writes" in self.parts)):
            m.d.comb += Assert(wn < w, "no bus write beyond the WRITE requests' words")
            with m.Switch(wn):
                for i, (a, d) in enumerate(self.writes):
                    with m.Case(i):
                        m.d.comb += Assert((dut.bus.addr == a) & (dut.bus.w_data == d),
                                           "bus write = the WRITE requests' next word")

        # liveness, bounded: `bound` cycles after the last byte every response is out
        after = Signal(range(self.bound + 2), reset_less=True)
        with m.If(run & ~more & (after != self.bound + 1)):
            m.d.sync += after.eq(after + 1)
        with m.If((after == self.bound) & ("live" in self.parts)):
            m.d.comb += [Assert(got == r, "every request answered within the bound"),
                         Assert(wn == w, "every WRITE committed within the bound")]
        return m


def default_bound(responses, writes, stall):
    """Cycles after a stream's last byte by which its responses must be out: the last
    request's check and execution (16, its WRITE words one a cycle) and every response
    byte with ``stall`` cycles before each (two more as margin)."""
    return 16 + len(writes) + (len(b"".join(responses)) + 2) * (stall + 1)


def stream_depth(requests, responses, writes, gap, stall, extra=0, **_):
    """A BMC depth that covers the whole stream at its slowest and the bound after it."""
    n = len(b"".join(requests))
    return (LinkContract.RESET + n * (gap + 1) + default_bound(responses, writes, stall)
            + extra + 2)

