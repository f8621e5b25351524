"""Requantizer against golden.quantize (batched simulations, random back-pressure), fixed-point
and FP32 inputs, and constructor errors. (MXSF output: tests/hw/test_mxsf_switch.py.)"""

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.dequant import Requantizer
from mxhw.golden import formats
from mxhw.sim import run
from support.hyp import budget
from support.pe import (F32_NONFINITE, check_requant, f32, f32_blocks, fixed_blocks,
                        requant_input, requant_pack, sized, waits)

FMTS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8",
        "mxint4"]


check = check_requant


@budget(30)
@given(st.sampled_from(FMTS), st.integers(2, 30), st.integers(-8, 40), st.integers(0, 7),
       st.data(), waits(), waits())
def test_requant_vs_golden(fmt, in_width, in_frac, pipeline, data, idle, stall):
    k = 4
    dut = Requantizer(sized(fmt, k), in_width=in_width, in_frac=in_frac, pipeline=pipeline)
    blocks = data.draw(st.lists(fixed_blocks(k, in_width), min_size=1, max_size=24))
    check(dut, blocks, idle, stall)


@pytest.mark.slow
@pytest.mark.parametrize("in_kind", ["fixed", "fp32"])
@pytest.mark.parametrize("fmt", FMTS)
def test_requant_k32_all_codes(fmt, in_kind):
    """k = 32: blocks whose maximum is 2**emax-ish, so that every element code's value and
    every midpoint between neighbours (RNE ties) appears; as fixed point and as float32."""
    elem = formats.get(fmt).element
    frac = 1 - elem.lsb_exp  # midpoints are on the grid
    vals = np.unique(np.abs(elem.finite_values))
    mids = (vals[:-1] + vals[1:]) / 2
    cand = np.concatenate([vals, mids, -vals, -mids, vals * 1.0625])
    ints = np.round(np.ldexp(cand, frac)).astype(np.int64)
    top = int(np.ldexp(2.0 ** elem.emax, frac))
    rng = np.random.default_rng(3)
    ints = rng.permutation(ints)
    blocks = []
    for i in range(0, len(ints), 31):
        chunk = list(ints[i:i + 31]) + [0] * (31 - len(ints[i:i + 31]))
        blocks.append([top] + chunk)
    blocks.append([0] * 32)
    blocks.append([(1 << 39) - 1] + [-(1 << 39)] + [1] * 30)
    if in_kind == "fp32":
        # the same values as float32 (exact but for the last block, which float32 rounds)
        blocks = [[int(b) for b in np.ldexp(np.array(blk, dtype=np.float64), -frac)
                   .astype(np.float32).view(np.uint32)] for blk in blocks]
        dut = Requantizer(fmt, in_kind="fp32", pipeline=2)
    else:
        dut = Requantizer(fmt, in_width=40, in_frac=frac, pipeline=2)
    check(dut, blocks, 5, 5)


#: golden casts a signalling-NaN float32 to float64 (a NaN): NumPy warns, harmlessly
QUIET_SNAN = pytest.mark.filterwarnings("ignore:invalid value encountered in cast")


@QUIET_SNAN
@budget(30)
@given(st.sampled_from(FMTS), st.integers(0, 6), st.data(), waits(), waits())
def test_requant_fp32_vs_golden(fmt, pipeline, data, idle, stall):
    k = 4
    dut = Requantizer(sized(fmt, k), in_kind="fp32", pipeline=pipeline)
    blocks = data.draw(st.lists(f32_blocks(k), min_size=1, max_size=24))
    check(dut, blocks, idle, stall)


@QUIET_SNAN
@pytest.mark.parametrize("fmt", FMTS)
def test_requant_fp32_nan_inf(fmt):
    """A block with a NaN or +-Inf anywhere: golden's NaN scale and zero codes; the blocks
    around it are unaffected."""
    k = 4
    one, tiny = f32(0, 127, 0), f32(1, 0, 3)
    blocks = []
    for bad in F32_NONFINITE:
        for pos in range(k):
            blk = [one, tiny, f32(1, 120, 0x400000), f32(0, 130, 1)]
            blk[pos] = bad
            blocks += [blk, [one, tiny, one, tiny]]
    q = golden.quantize(np.array(blocks, dtype=np.uint32).view(np.float32), sized(fmt, k))
    assert (q.scales[0::2] == 0xFF).all() and (q.elements[0::2] == 0).all()
    dut = Requantizer(sized(fmt, k), in_kind="fp32", pipeline=2)
    check(dut, blocks, 11, 11)


# every depth each format has: mxsf 2..8, the others 1..7
DEPTHS = [(f, p) for f in ("mxfp4", "mxint8", "mxsf")
          for p in (range(2, 9) if f == "mxsf" else range(1, 8))]


@pytest.mark.parametrize("fmt,pipeline", DEPTHS)
@pytest.mark.parametrize("in_kind", ["fixed", "fp32"])
def test_latency(fmt, in_kind, pipeline):
    """``latency`` is the number of cycles from a block's transfer on ``i`` to its
    appearance on ``o`` (no back-pressure): ``pipeline`` (mxsf: 2..8, the others 1..7).
    Measured on the simulated circuit, the expected count from the parameters."""
    k = 4
    dut = Requantizer(sized(fmt, k), in_kind=in_kind, pipeline=pipeline)
    assert dut.latency == pipeline
    seen = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload, dut.i.payload.shape().from_bits(0))
        ctx.set(dut.i.valid, 1)
        assert ctx.get(dut.i.ready)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for cycle in range(1, 12):
            if ctx.get(dut.o.valid):
                seen.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert seen == [pipeline]


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxint8"])
@pytest.mark.parametrize("in_kind", ["fixed", "fp32"])
def test_combinational(fmt, in_kind):
    """``pipeline=0``: each block's result on ``o`` at once, ``i.ready`` is ``o.ready``."""
    k = 4
    dut = Requantizer(sized(fmt, k), in_kind=in_kind, pipeline=0)
    assert dut.latency == 0
    one = f32(0, 127, 0) if in_kind == "fp32" else 1 << 16
    blocks = [[one, 0, 3, -one], [0] * k, [one * 5, -7, 1, 2]]
    if in_kind == "fp32":
        blocks = [[one, 0, f32(1, 127, 0), 3], [0] * k,
                  [f32(0, 129, 0x200000), f32(1, 100, 5), f32(0, 0, 1), one]]
    q = golden.quantize(requant_input(dut, blocks), dut.fmt)
    bits = dut.fmt.element.bits

    async def tb(ctx):
        for b, blk in enumerate(blocks):
            ctx.set(dut.i.payload, requant_pack(dut, blk))
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.o.ready, b % 2)
            assert ctx.get(dut.o.valid) == 1 and ctx.get(dut.i.ready) == b % 2
            assert ctx.get(dut.o.payload.scale) == int(q.scales[b, 0])
            els = ctx.get(dut.o.payload.elements.as_value())
            assert [(els >> (bits * j)) & ((1 << bits) - 1) for j in range(k)] == \
                [int(c) for c in q.elements[b]]

    run(dut, tb, clock=None)


def test_init():
    r = Requantizer("mxfp8_e4m3")
    assert r.k == 32 and r.in_width == 24 and r.in_frac == 16 and r.latency == 7
    assert r.in_kind == "fixed"
    assert Requantizer("mxfp4").fmt is formats.get("mxfp4_e2m1")        # an alias
    with pytest.deprecated_call():
        assert Requantizer("mxfp4", k=32).k == 32
    r = Requantizer(sized("mxint8", 8), in_kind="fp32", pipeline=1)
    assert (r.k, r.in_kind, r.in_width, r.in_frac, r.latency) == (8, "fp32", 32, None, 1)
    assert r.i.payload.shape().elem_shape == unsigned(32)


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"fmt": "fp8_e4m3"}, TypeError,
     "fmt must be a block format (a name or a BlockFormat), not ElementFormat('fp8_e4m3')"),
    ({"fmt": "nope"}, ValueError, None),
    ({"k": 0}, ValueError, "k must be >= 1, not 0"),
    ({"k": 8}, ValueError, "k must be the block size of mxfp8_e4m3 (32), not 8; pass a "
     "block format of 8 elements instead"),
    ({"fmt": sized("mxfp4", (2, 2))}, ValueError,   # mxsf_tile: tests/hw/test_requant_tile.py
     "fmt: the re-quantiser takes 2-D tiles of MXSF only (mxsf_tile, golden.mxsf.mxsf_tile(r, "
     "c)), not 'mxfp4_e2m1_k(2, 2)'"),
    ({"fmt": "mxint8_mase"}, ValueError,
     "fmt must be an OCP MX block format (one fp or int element format, E8M0 scale, floor "
     "or RCEIL rule, RNE, 1-D blocks) or mxsf, not 'mxint8_mase'"),
    ({"in_kind": "float"}, ValueError,
     "in_kind must be one of 'fixed', 'fp32', not 'float'"),
    ({"in_kind": "fp32", "in_width": 24}, ValueError,
     "in_width applies to in_kind 'fixed' only; leave it None for 'fp32', not 24"),
    ({"in_kind": "fp32", "in_frac": 0}, ValueError,
     "in_frac applies to in_kind 'fixed' only; leave it None for 'fp32', not 0"),
    ({"in_width": 1}, ValueError, "in_width must be in [2, 53], not 1"),
    ({"in_width": 54}, ValueError, "in_width must be in [2, 53], not 54"),
    ({"in_frac": 1.5}, TypeError, "in_frac must be an integer, not 1.5"),
    ({"in_width": 53, "in_frac": -100}, ValueError,
     "in_frac -100 with in_width 53 gives scale exponents in [-127, 144], outside E8M0's "
     "[-127, 127] (or in_frac above 1000)"),
    ({"pipeline": 8}, ValueError, "pipeline must be in [0, 7], not 8"),
    ({"pipeline": -1}, ValueError, "pipeline must be in [0, 7], not -1"),
    ({"fmt": "mxsf", "pipeline": 1}, ValueError, "pipeline must be in [2, 8], not 1"),
    ({"pipeline": "2"}, TypeError, "pipeline must be an integer, not '2'"),
    ({"pipeline": 2.0}, TypeError, "pipeline must be an integer, not 2.0"),
    ({"pipeline": True}, TypeError, "pipeline must be an integer, not True"),
])
@pytest.mark.filterwarnings("ignore:k is deprecated")
def test_init_wrong(kwargs, exc, msg):
    kw = {"fmt": "mxfp8_e4m3", **kwargs}
    with pytest.raises(exc) as info:
        Requantizer(**kw)
    if msg is None:
        assert str(info.value).startswith("fmt must be a block format name, one of ")
        assert str(info.value).endswith("; not 'nope'")
    else:
        assert str(info.value) == msg
