"""Shared drivers of the whole-SoC byte-stream tests: the SoC (host link, Wishbone bridge,
registers, scratchpad) fed bursts of bytes in Amaranth's simulator, the golden
:class:`~mxhw.soc.linkmodel.LinkModel` on a model of the core's memory beside it, and
Hypothesis strategies of valid, corrupted, truncated, oversized and junk packets."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from mxhw.soc import protocol as P
from mxhw.soc.link import HostLink
from mxhw.soc.linkmodel import LinkModel
from mxhw.soc.top import ID_VALUE, REGS, SCRATCHPAD_BASE, VERSION, SoC, SoCConfig

__all__ = ["CFG", "TIMEOUT", "QUIET", "RX_DEPTH", "run_bursts", "CoreModel", "items",
           "bursts", "raw_request", "valid_packet"]

CFG = SoCConfig(scratch_words=16, rows=0, max_payload=64)
TIMEOUT = 200
QUIET = 32
RX_DEPTH = HostLink(CFG.max_payload).rx_depth
#: idle cycles (no response byte) after a burst that end it: the watchdog, the quiet gap
#: and a WRITE's commit
WINDOW = TIMEOUT + QUIET + 100


def run_bursts(bursts, cfg=CFG):
    """Feed each burst to a fresh SoC a byte per cycle (as fast as ``rx.ready`` allows),
    then wait until no response byte came for :data:`WINDOW` cycles: a long gap. Returns
    the bytes the SoC sent during each burst and its gap."""
    from amaranth.sim import Simulator
    dut = SoC(cfg, timeout_cycles=TIMEOUT, quiet_cycles=QUIET)
    results = []

    async def tb(ctx):
        ctx.set(dut.tx.ready, 1)
        for burst in bursts:
            out, i, idle = bytearray(), 0, 0
            while i < len(burst) or idle < WINDOW:
                sending = i < len(burst)
                ctx.set(dut.rx.valid, sending)
                if sending:
                    ctx.set(dut.rx.payload, burst[i])
                *_, rdy, txv, txp = await ctx.tick().sample(dut.rx.ready, dut.tx.valid,
                                                             dut.tx.payload)
                if sending and rdy:
                    i += 1
                if txv:
                    out.append(txp)
                    idle = 0
                elif not sending:
                    idle += 1
            results.append(bytes(out))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return results


class CoreModel:
    """The core's words as the link sees them (word addresses), for :class:`LinkModel`:
    the scratchpad, the SCRATCH register, the constant registers, LINK_ERRORS (the
    model's error count); everything else reads 0 and ignores writes. CYCLES is not
    modelled (the strategies never read it)."""

    def __init__(self, cfg=CFG):
        self.cfg = cfg
        self.spad = [0] * cfg.scratch_words
        self.scratch = 0
        self.link = LinkModel(cfg.max_payload, RX_DEPTH, self.read, self.write)

    def _spad_index(self, w):
        i = w - (SCRATCHPAD_BASE >> 2)
        return i if 0 <= i < self.cfg.scratch_words else None

    def read(self, w):
        i = self._spad_index(w)
        if i is not None:
            return self.spad[i]
        major, minor, patch = VERSION
        regs = {REGS["ID"]: ID_VALUE, REGS["VERSION"]: major << 16 | minor << 8 | patch,
                REGS["FEATURES"]: self.cfg.features(), REGS["CLK_HZ"]: self.cfg.clk_hz,
                REGS["LINK_ERRORS"]: self.link.errors, REGS["SCRATCH"]: self.scratch}
        assert w != REGS["CYCLES"] >> 2, "CYCLES is not modelled"
        return regs.get(4 * w, 0)

    def write(self, w, value):
        i = self._spad_index(w)
        if i is not None:
            self.spad[i] = value
        elif w == REGS["SCRATCH"] >> 2:
            self.scratch = value


def raw_request(cmd, addr, length, payload=b"", seq=0):
    """A request with any header fields (:func:`protocol.request` refuses some)."""
    body = struct.pack("<BBIH", cmd, seq, addr, length) + payload
    return bytes([P.SYNC_REQ]) + body + struct.pack("<H", P.crc16(body))


_REGS = [REGS[n] for n in ("ID", "VERSION", "FEATURES", "CLK_HZ", "LINK_ERRORS", "SCRATCH")]
_UNMAPPED = [0x40, 0x3000_0000]


def _span():
    """``(byte address, words)`` a valid READ or WRITE covers: scratchpad words (running
    past its end too), one register (not CYCLES: it is not modelled), unmapped words."""
    n = st.integers(1, 8)
    spad = st.integers(0, CFG.scratch_words - 1).map(lambda i: SCRATCHPAD_BASE + 4 * i)
    return st.one_of(st.tuples(spad, n), st.tuples(st.sampled_from(_REGS), st.just(1)),
                     st.tuples(st.sampled_from(_UNMAPPED), n))


def valid_packet():
    """A valid request: PING, READ or WRITE (:func:`_span`), any seq."""
    seq = st.integers(0, 255)
    words = st.lists(st.integers(0, 2**32 - 1), min_size=8, max_size=8)
    return st.one_of(
        st.builds(lambda s: P.request(P.Cmd.PING, seq=s), seq),
        st.builds(lambda an, s: P.request(P.Cmd.READ, an[0], 4 * an[1], seq=s), _span(), seq),
        st.builds(lambda an, w, s: P.request(P.Cmd.WRITE, an[0], seq=s,
                                             payload=struct.pack(f"<{an[1]}I", *w[:an[1]])),
                  _span(), words, seq))


def items():
    """One piece of a burst: a valid packet, or one corrupted (a bit flipped after the
    sync byte), truncated, with a byte deleted or inserted, an oversized READ/WRITE, or
    junk bytes."""
    pkt = valid_packet()
    return st.one_of(
        pkt, pkt,
        st.builds(lambda p, b: p[:1 + b // 8 % (len(p) - 1)]
                  + bytes([p[1 + b // 8 % (len(p) - 1)] ^ 1 << b % 8])
                  + p[2 + b // 8 % (len(p) - 1):], pkt, st.integers(0, 1 << 12)),
        st.builds(lambda p, c: p[:c % len(p)], pkt, st.integers(1, 200)),
        st.builds(lambda p, c: p[:c % len(p)] + p[c % len(p) + 1:], pkt,
                  st.integers(0, 200)),
        st.builds(lambda p, c, b: p[:c % len(p)] + bytes([b]) + p[c % len(p):], pkt,
                  st.integers(0, 200), st.integers(0, 255)),
        st.builds(lambda cmd, n, s: raw_request(cmd, SCRATCHPAD_BASE, n, seq=s,
                                                payload=bytes(n if cmd == P.Cmd.WRITE
                                                              else 0)),
                  st.sampled_from([P.Cmd.READ, P.Cmd.WRITE]),
                  st.integers(CFG.max_payload // 4 + 1, 24).map(lambda w: 4 * w),
                  st.integers(0, 255)),
        st.binary(min_size=1, max_size=12))


def bursts(max_bursts=5):
    """Bursts of items sent back to back, each within the receive buffer."""
    burst = st.lists(items(), min_size=1, max_size=6).map(b"".join).filter(
        lambda b: len(b) <= RX_DEPTH - 8)
    return st.lists(burst, min_size=1, max_size=max_bursts)
