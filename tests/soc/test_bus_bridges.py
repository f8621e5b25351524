"""The core's bus pieces on their own: :class:`~mxhw.soc.core.CoreDecode` on its word bus,
:class:`~mxhw.soc.wishbone.WishboneToWordBus` in front of a word-bus slave written here,
:class:`~mxhw.soc.wishbone.WordBusToWishbone` (and the two bridges back to back), each
against a word-level model: every access's read data, cycle by cycle."""

import gc
import warnings

import pytest
from amaranth import Array, Module, Signal
from amaranth.lib import wiring
from amaranth.hdl import UnusedElaboratable
from amaranth.lib.wiring import In
from amaranth.sim import Simulator
from hypothesis import given, strategies as st

from mxhw.soc.bus import BusSignature
from mxhw.soc.core import CoreDecode
from mxhw.soc.top import REGS, SCRATCHPAD_BASE, SoCConfig
from mxhw.soc.wishbone import Signature as WishboneSignature, WishboneToWordBus, WordBusToWishbone

from support.hyp import budget
from support.wb import core_regs, run_ops

WORDS = 8     # the test slave's register file


class ModelSlave(wiring.Component):
    """A word-bus slave for the tests: ``WORDS`` registers at word addresses ``a % WORDS``
    (the address's low bits), read data ``latency`` cycles after a read, 0 after no read;
    it counts the writes it takes (``writes``)."""

    def __init__(self, latency, addr_width=30):
        self._latency = latency
        super().__init__({"bus": In(BusSignature(addr_width)), "writes": wiring.Out(16)})

    def elaborate(self, platform):
        m = Module()
        regs = Array(Signal(32, name=f"r{i}") for i in range(WORDS))
        idx = self.bus.addr[:WORDS.bit_length() - 1]
        with m.If(self.bus.w_en):
            m.d.sync += [regs[idx].eq(self.bus.w_data), self.writes.eq(self.writes + 1)]
        data = self.bus.r_en.replicate(32) & regs[idx]
        for _ in range(self._latency):
            q = Signal(32)
            m.d.sync += q.eq(data)
            data = q
        m.d.comb += self.bus.r_data.eq(data)
        return m


def _model_reads(ops):
    """The read data of ``ops`` ``(we, word address, data)`` on :class:`ModelSlave`."""
    mem, out = [0] * WORDS, []
    for we, adr, dat in ops:
        if we:
            mem[adr % WORDS] = dat
        out.append(None if we else mem[adr % WORDS])
    return out


word_ops = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 2 * WORDS - 1),
                              st.integers(0, 2**32 - 1)), min_size=1, max_size=20)


# ---- WishboneToWordBus ----------------------------------------------------------------------

class _WbFront(wiring.Component):
    """WishboneToWordBus + ModelSlave with the adapter's Wishbone port outside."""

    def __init__(self, latency, pipelined):
        self._latency, self._pipelined = latency, pipelined
        self.adapter = WishboneToWordBus(30, latency, pipelined)
        sig = WishboneSignature(addr_width=30, data_width=32,
                                features={"stall"} if pipelined else ())
        super().__init__({"bus": In(sig), "writes": wiring.Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.adapter = self.adapter
        m.submodules.slave = slave = ModelSlave(self._latency)
        wiring.connect(m, wiring.flipped(self.bus), self.adapter.wb)
        wiring.connect(m, self.adapter.bus, slave.bus)
        m.d.comb += self.writes.eq(slave.writes)
        return m


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "classic"])
@budget(20)
@given(latency=st.integers(1, 4), ops=word_ops,
       gaps=st.lists(st.integers(0, 3), min_size=20, max_size=20))
def test_wishbone_to_word_bus_matches_model(pipelined, latency, ops, gaps):
    got = run_ops(_WbFront(latency, pipelined), ops, pipelined, gaps[:len(ops)])
    assert got == _model_reads(ops)


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "classic"])
@budget(10)
@given(latency=st.integers(1, 4), adr=st.integers(0, WORDS - 1),
       dat=st.integers(1, 2**32 - 1))
def test_wishbone_write_without_sel_is_dropped(pipelined, latency, adr, dat):
    """A write with its ``sel`` bit clear is acknowledged and changes nothing."""
    dut = _WbFront(latency, pipelined)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    seen = {}

    async def tb(ctx):
        bus = dut.bus
        ctx.set(bus.cyc, 1)
        ctx.set(bus.stb, 1)
        ctx.set(bus.we, 1)
        ctx.set(bus.adr, adr)
        ctx.set(bus.dat_w, dat)
        ctx.set(bus.sel, 0)
        acks = 0
        for cycle in range(latency + 3):
            acks += ctx.get(bus.ack)
            await ctx.tick()
            if cycle == 0:
                ctx.set(bus.stb, 0)
        ctx.set(bus.cyc, 0)
        seen["acks"], seen["writes"] = acks, ctx.get(dut.writes)

    sim.add_testbench(tb)
    sim.run()
    assert seen == {"acks": 1, "writes": 0}


def test_wishbone_to_word_bus_bad_parameters():
    with pytest.raises(ValueError, match="latency"):
        WishboneToWordBus(30, 0)
    with pytest.raises(ValueError, match="addr_width"):
        WishboneToWordBus(31, 1)


# ---- WordBusToWishbone ----------------------------------------------------------------------

@budget(20)
@given(addr=st.integers(0, 2**30 - 1), w_data=st.integers(0, 2**32 - 1),
       r_en=st.integers(0, 1), w_en=st.integers(0, 1), dat_r=st.integers(0, 2**32 - 1))
def test_word_bus_to_wishbone_maps_each_access(addr, w_data, r_en, w_en, dat_r):
    """Combinational: an access is one request in the same cycle, ``r_data`` is ``dat_r``."""
    dut = WordBusToWishbone()
    sim = Simulator(dut)
    got = {}

    async def tb(ctx):
        for name, v in (("addr", addr), ("w_data", w_data), ("r_en", r_en), ("w_en", w_en)):
            ctx.set(getattr(dut.bus, name), v)
        ctx.set(dut.wb.dat_r, dat_r)
        got.update({n: ctx.get(getattr(dut.wb, n))
                    for n in ("adr", "dat_w", "sel", "cyc", "stb", "we")})
        got["r_data"] = ctx.get(dut.bus.r_data)

    sim.add_testbench(tb)
    sim.run()
    req = r_en | w_en
    assert got == {"adr": addr, "dat_w": w_data, "sel": 1, "cyc": req, "stb": req,
                   "we": w_en, "r_data": dat_r}


class _RoundTrip(wiring.Component):
    """Word bus -> WordBusToWishbone -> WishboneToWordBus (pipelined) -> ModelSlave."""

    def __init__(self, latency):
        self._latency = latency
        super().__init__({"bus": In(BusSignature())})

    def elaborate(self, platform):
        m = Module()
        m.submodules.to_wb = to_wb = WordBusToWishbone()
        m.submodules.from_wb = from_wb = WishboneToWordBus(30, self._latency, True)
        m.submodules.slave = slave = ModelSlave(self._latency)
        wiring.connect(m, wiring.flipped(self.bus), to_wb.bus)
        wiring.connect(m, to_wb.wb, from_wb.wb)
        wiring.connect(m, from_wb.bus, slave.bus)
        return m


def run_word_ops(dut, ops, gaps, latency):
    """Word-bus accesses ``ops`` on ``dut.bus`` (one per cycle, ``gaps[i]`` idle cycles
    before op ``i``); each read's ``r_data`` sampled ``latency`` cycles after it."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    out = [None] * len(ops)

    async def tb(ctx):
        due = {}            # cycle -> op index whose read data is due then
        cycle, i, gap = 0, 0, gaps[0]
        while i < len(ops) or due:
            if cycle in due:
                out[due.pop(cycle)] = ctx.get(dut.bus.r_data)
            offer = i < len(ops) and gap == 0
            we, adr, dat = ops[i] if offer else (0, 0, 0)
            ctx.set(dut.bus.addr, adr)
            ctx.set(dut.bus.w_data, dat)
            ctx.set(dut.bus.w_en, offer and we)
            ctx.set(dut.bus.r_en, offer and not we)
            if offer:
                if not we:
                    due[cycle + latency] = i
                i += 1
                gap = gaps[i] if i < len(ops) else 0
            else:
                gap = max(0, gap - 1)
            await ctx.tick()
            cycle += 1
            assert cycle < 1000

    sim.add_testbench(tb)
    sim.run()
    return out


@budget(20)
@given(latency=st.integers(1, 4), ops=word_ops,
       gaps=st.lists(st.integers(0, 2), min_size=20, max_size=20))
def test_bridges_back_to_back_match_model(latency, ops, gaps):
    got = run_word_ops(_RoundTrip(latency), ops, gaps, latency)
    assert got == _model_reads(ops)


# ---- CoreDecode -----------------------------------------------------------------------------

CFG = SoCConfig(rows=0, scratch_words=32, clk_hz=7_654_321)
SPAD = SCRATCHPAD_BASE // 4


def _decode_model(ops, link_errors):
    """The read data of ``ops`` on CoreDecode(CFG): the registers of docs/core.md
    (``support.wb.core_regs``; SCRATCH as written; CYCLES not modelled: None), scratchpad
    words never written: None; anything else reads 0."""
    fixed = core_regs(CFG, link_errors)
    spad, scratch, out = {}, 0, []
    for we, adr, dat in ops:
        if we:
            if SPAD <= adr < SPAD + CFG.scratch_words:
                spad[adr] = dat
            elif adr == REGS["SCRATCH"] // 4:
                scratch = dat
            out.append(None)
        elif SPAD <= adr < SPAD + CFG.scratch_words:
            out.append(spad.get(adr))
        elif adr == REGS["SCRATCH"] // 4:
            out.append(scratch)
        elif adr == REGS["CYCLES"] // 4:
            out.append(None)
        else:
            out.append(fixed.get(adr * 4, 0))
    return out


@st.composite
def decode_ops(draw):
    target = st.one_of(
        st.integers(0, CFG.scratch_words - 1).map(lambda i: SPAD + i),
        st.sampled_from([a // 4 for a in REGS.values()]),
        st.sampled_from([0x18 // 4, 0x28 // 4, 0x3C // 4, SPAD - 1, SPAD + CFG.scratch_words,
                         0x2000_0000 // 4, 0x3000_0000 // 4, (1 << 30) - 1]))
    return draw(st.lists(st.tuples(st.integers(0, 1), target, st.integers(0, 2**32 - 1)),
                         min_size=1, max_size=24))


@budget(20)
@given(ops=decode_ops(), gaps=st.lists(st.integers(0, 2), min_size=24, max_size=24),
       link_errors=st.integers(0, 2**16 - 1))
def test_core_decode_matches_model(ops, gaps, link_errors):
    """One access per cycle (or with gaps), read data READ_LATENCY cycles after each read."""
    dut = CoreDecode(CFG)

    class Top(wiring.Component):
        bus: In(BusSignature())

        def elaborate(self, platform):
            m = Module()
            m.submodules.decode = dut
            wiring.connect(m, wiring.flipped(self.bus), dut.bus)
            m.d.comb += dut.link_errors.eq(link_errors)
            return m

    got = run_word_ops(Top(), ops, gaps, CoreDecode.READ_LATENCY)
    for (we, adr, _), g, want in zip(ops, got, _decode_model(ops, link_errors)):
        if want is not None:
            assert g == want, (hex(adr * 4), g, want)


def test_core_decode_refuses_a_non_config():
    with warnings.catch_warnings():
        # the half-built component is never elaborated: no UnusedElaboratable at exit
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="SoCConfig"):
            CoreDecode({"rows": 0})
        gc.collect()
