"""The accelerator core on Wishbone B4 (:mod:`mxhw.soc.core`, :mod:`mxhw.soc.wishbone`):
driven by classic and pipelined initiators written from the specification; a GEMM tile
against golden; single reads and writes against a model of the registers and scratchpad;
the generated register map in docs/core.md."""

from pathlib import Path

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from hypothesis import given, strategies as st

from mxhw.soc.core import AcceleratorCore, render_map
from mxhw.soc.top import REGS, SoCConfig
from mxhw.soc import wishbone

from support.hyp import budget
from support.soc import soc_expect
from support.wb import MEMBERS, core_regs, run_driver, run_ops

ROOT = Path(__file__).resolve().parents[2]
OS, WS = "output_stationary", "weight_stationary"


def test_signature_members_follow_amaranth_soc():
    sig = wishbone.Signature(addr_width=30, data_width=32)
    assert {n: ("out" if m.flow == wiring.Out else "in") for n, m in sig.members.items()} \
        == MEMBERS
    assert sig.members["sel"].shape == 1
    piped = wishbone.Signature(addr_width=30, data_width=32, granularity=8,
                               features={"stall", "err"})
    assert piped.members["stall"].flow == wiring.In and piped.members["err"].flow == wiring.In
    assert piped.members["sel"].shape == 4
    with pytest.raises(ValueError, match="feature"):
        wishbone.Signature(addr_width=30, data_width=32, features={"bogus"})
    with pytest.raises(ValueError, match="granularity"):
        wishbone.Signature(addr_width=30, data_width=16, granularity=32)


def test_core_connects_with_wiring_connect():
    class Master(wiring.Component):
        bus: Out(wishbone.Signature(addr_width=30, data_width=32, features={"stall"}))

        def elaborate(self, platform):
            return Module()

    m = Module()
    m.submodules.cpu = cpu = Master()
    m.submodules.mx = mx = AcceleratorCore(SoCConfig(rows=0))
    wiring.connect(m, cpu.bus, mx.bus)
    assert "stall" not in AcceleratorCore(SoCConfig(rows=0), pipelined=False).bus.signature.members


def test_map_documented():
    text = (ROOT / "docs" / "core.md").read_text()
    assert render_map() in text
    for name, addr in REGS.items():
        assert f"| 0x{addr >> 16:04X}_{addr & 0xFFFF:04X} |" in render_map()
        assert f"| {name} |" in render_map()


# ---- single accesses against a model --------------------------------------------------

CFG = SoCConfig(rows=0, scratch_words=64, clk_hz=12_345_678)
SPAD = 0x1000_0000 // 4


UNMAPPED = [0x24 // 4, 0x3C // 4, 0x40 // 4, 0x1234, SPAD - 1, SPAD + CFG.scratch_words,
            0x3000_0000 // 4, (1 << 30) - 1]


@st.composite
def accesses(draw):
    target = st.one_of(
        st.integers(0, CFG.scratch_words - 1).map(lambda i: SPAD + i),
        st.sampled_from([a // 4 for a in REGS.values()]),
        st.sampled_from(UNMAPPED))
    ops = draw(st.lists(st.tuples(st.booleans(), target, st.integers(0, 2**32 - 1)),
                        min_size=1, max_size=24))
    gaps = draw(st.lists(st.integers(0, 3), min_size=len(ops), max_size=len(ops)))
    return [(int(w), a, d) for w, a, d in ops], gaps


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "classic"])
@budget(15)
@given(data=accesses())
def test_single_accesses_match_model(pipelined, data):
    ops, gaps = data
    got = run_ops(AcceleratorCore(CFG, pipelined=pipelined), ops, pipelined, gaps)
    regs = core_regs(CFG)
    scratch_reg = 0
    spad = [None] * CFG.scratch_words     # None: never written (contents unknown)
    for (we, adr, dat), r in zip(ops, got):
        if we:
            if SPAD <= adr < SPAD + CFG.scratch_words:
                spad[adr - SPAD] = dat
            elif adr == REGS["SCRATCH"] // 4:
                scratch_reg = dat
            continue
        if SPAD <= adr < SPAD + CFG.scratch_words:
            if spad[adr - SPAD] is not None:
                assert r == spad[adr - SPAD], (adr, r)
        elif adr == REGS["SCRATCH"] // 4:
            assert r == scratch_reg
        elif adr == REGS["CYCLES"] // 4:
            pass
        elif adr * 4 in regs:
            assert r == regs[adr * 4], (hex(adr * 4), r)
        else:
            assert r == 0, (hex(adr), r)


def test_pipelined_takes_a_request_every_cycle():
    """Back-to-back requests: a write then reads of the same words, all in one burst."""
    ops = [(1, SPAD + i, 0x1000 + i) for i in range(8)] + [(0, SPAD + i, 0) for i in range(8)]
    got = run_ops(AcceleratorCore(CFG), ops, True)
    assert got[8:] == [0x1000 + i for i in range(8)]


# ---- a GEMM through Wishbone -----------------------------------------------------------

GEMM_CFGS = {OS: SoCConfig(rows=4, cols=4, max_k=64, scratch_words=16),
             WS: SoCConfig(rows=4, cols=3, depth=3, max_k=64, dataflow=WS,
                           scratch_words=16)}


@pytest.mark.parametrize("dataflow,pipelined", [(OS, True), (WS, False)])
def test_gemm_tile_through_wishbone(dataflow, pipelined):
    cfg = GEMM_CFGS[dataflow]
    rng = np.random.default_rng(31)
    a = rng.normal(size=(5, 64))
    b = rng.normal(size=(64, 4))
    got = run_driver(AcceleratorCore(cfg, pipelined=pipelined), lambda acc: acc.matmul(a, b),
                     pipelined)
    want = soc_expect(a, b, cfg)
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float64))
