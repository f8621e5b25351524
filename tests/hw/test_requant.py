"""Requantizer against golden.quantize (batched simulations, random back-pressure), fixed-point
and FP32 inputs, and constructor errors. (MXSF output: tests/hw/test_mxsf_switch.py.)"""

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings, strategies as st

from mxhw import golden
from mxhw.dequant import Requantizer
from mxhw.golden import formats
from mxhw.sim import run, seeded_rng, stream_recv, stream_send

FMTS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8",
        "mxint4"]


def simulate(dut, blocks, seed):
    rng = seeded_rng(seed)
    got = []
    W = dut.in_width
    layout = dut.i.payload.shape()

    def pack(b):
        v = 0
        for j, x in enumerate(b):
            v |= (int(x) & ((1 << W) - 1)) << (W * j)
        return layout.from_bits(v)

    async def producer(ctx):
        await stream_send(ctx, dut.i, [pack(b) for b in blocks], rng=rng, p_idle=0.3)

    async def consumer(ctx):
        for p in await stream_recv(ctx, dut.o, len(blocks), rng=rng, p_stall=0.4):
            bits = dut.fmt.element.bits
            els = p.elements.as_value().value
            got.append((p.scale, [(els >> (bits * j)) & ((1 << bits) - 1)
                                  for j in range(dut.k)]))

    run(dut, producer, consumer)
    return got


def golden_input(dut, blocks):
    """The values the input blocks stand for: fixed-point integers or float32 bit patterns."""
    if dut.in_kind == "fp32":
        return np.array(blocks, dtype=np.uint32).reshape(-1, dut.k).view(np.float32)
    return np.ldexp(np.array(blocks, dtype=np.float64), -dut.in_frac)


def check(dut, blocks, seed):
    got = simulate(dut, blocks, seed)
    fmt = dataclasses.replace(dut.fmt, block=dut.k)
    q = golden.quantize(golden_input(dut, blocks), fmt)
    for b, (scale, els) in enumerate(got):
        assert scale == int(q.scales[b, 0]), (b, blocks[b])
        assert els == [int(c) for c in q.elements[b]], (b, blocks[b])


def value_strategy(W):
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    return st.one_of(st.integers(lo, hi), st.sampled_from([0, lo, hi, 1, -1]),
                     st.integers(max(lo, -64), min(hi, 64)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FMTS), st.integers(2, 30), st.integers(-8, 40), st.integers(1, 6),
       st.data())
def test_requant_vs_golden(fmt, in_width, in_frac, pipeline, data):
    k = 4
    dut = Requantizer(fmt, k=k, in_width=in_width, in_frac=in_frac, pipeline=pipeline)
    blk = st.lists(value_strategy(in_width), min_size=k, max_size=k)
    # scaled blocks: one large value and small ones (subnormals, underflow, ties)
    shifted = st.builds(lambda b, s: [x >> s for x in b[:-1]] + [b[-1]], blk,
                        st.integers(0, in_width))
    blocks = data.draw(st.lists(st.one_of(blk, shifted), min_size=1, max_size=24))
    check(dut, blocks, data.draw(st.integers(0, 2**32)))


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
        dut = Requantizer(fmt, k=32, in_kind="fp32", pipeline=2)
    else:
        dut = Requantizer(fmt, k=32, in_width=40, in_frac=frac, pipeline=2)
    check(dut, blocks, 5)


def f32(sign, exp, man):
    return sign << 31 | exp << 23 | man


#: Finite float32 edge cases: zeros, smallest/largest subnormal, smallest normal, one,
#: largest normal (both signs).
F32_EDGES = [f32(s, e, m) for s in (0, 1) for e, m in
             [(0, 0), (0, 1), (0, 0x7FFFFF), (1, 0), (127, 0), (254, 0x7FFFFF)]]
#: Non-finite float32: +-Inf, quiet and signalling NaNs.
F32_NONFINITE = [f32(0, 255, 0), f32(1, 255, 0), f32(0, 255, 1 << 22), f32(1, 255, 0x7FFFFF),
                 f32(0, 255, 1)]


@st.composite
def f32_block(draw, k, nonfinite=True):
    """k float32 bit patterns with exponents in a window below a random top (so elements
    are neither all flushed to zero nor all alike), mantissas random or with only their
    top few bits set (exact RNE ties on the element grid), some edge cases; with
    ``nonfinite``, now and then a NaN or Inf."""
    top = draw(st.one_of(st.integers(0, 254), st.sampled_from([0, 1, 2, 3, 4, 253, 254])))
    span = draw(st.integers(0, 40))
    special = F32_EDGES + (F32_NONFINITE if nonfinite else [])
    els = []
    for _ in range(k):
        if draw(st.integers(0, 11)) == 0:
            els.append(draw(st.sampled_from(special)))
            continue
        nb = draw(st.integers(0, 23))
        man = draw(st.integers(0, (1 << nb) - 1)) << (23 - nb)
        els.append(f32(draw(st.integers(0, 1)), max(0, top - draw(st.integers(0, span))),
                       man))
    return els


def f32_blocks(k):
    """Structured blocks, raw random bit patterns, and float32 values from Hypothesis."""
    floats = st.floats(width=32, allow_nan=True, allow_infinity=True).map(
        lambda v: int(np.array(v, dtype=np.float32).view(np.uint32)))
    return st.one_of(f32_block(k), f32_block(k, nonfinite=False),
                     st.lists(st.integers(0, 2**32 - 1), min_size=k, max_size=k),
                     st.lists(floats, min_size=k, max_size=k))


#: golden casts a signalling-NaN float32 to float64 (a NaN): NumPy warns, harmlessly
QUIET_SNAN = pytest.mark.filterwarnings("ignore:invalid value encountered in cast")


@QUIET_SNAN
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FMTS), st.integers(1, 6), st.data())
def test_requant_fp32_vs_golden(fmt, pipeline, data):
    k = 4
    dut = Requantizer(fmt, k=k, in_kind="fp32", pipeline=pipeline)
    blocks = data.draw(st.lists(f32_blocks(k), min_size=1, max_size=24))
    check(dut, blocks, data.draw(st.integers(0, 2**32)))


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
    q = golden.quantize(np.array(blocks, dtype=np.uint32).view(np.float32),
                        dataclasses.replace(formats.get(fmt), block=k))
    assert (q.scales[0::2] == 0xFF).all() and (q.elements[0::2] == 0).all()
    dut = Requantizer(fmt, k=k, in_kind="fp32", pipeline=2)
    check(dut, blocks, 11)


@pytest.mark.parametrize("fmt", ["mxfp4", "mxint8", "mxsf"])
@pytest.mark.parametrize("in_kind", ["fixed", "fp32"])
@pytest.mark.parametrize("pipeline", range(1, 7))
def test_latency(fmt, in_kind, pipeline):
    """``latency`` is the number of cycles from a block's transfer on ``i`` to its
    appearance on ``o`` (no back-pressure): ``pipeline`` (+1 for mxsf's mode select).
    Measured on the simulated circuit, the expected count from the parameters."""
    k = 4
    dut = Requantizer(fmt, k=k, in_kind=in_kind, pipeline=pipeline)
    assert dut.latency == pipeline + (fmt == "mxsf")
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
    assert seen == [pipeline + (fmt == "mxsf")]


def test_init():
    r = Requantizer("mxfp8_e4m3")
    assert r.k == 32 and r.in_width == 24 and r.in_frac == 16 and r.latency == 2
    assert r.in_kind == "fixed"
    r = Requantizer("mxint8", k=8, in_kind="fp32", pipeline=1)
    assert (r.k, r.in_kind, r.in_width, r.in_frac, r.latency) == (8, "fp32", 32, None, 1)
    assert r.i.payload.shape().elem_shape == unsigned(32)


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"fmt": "fp8_e4m3"}, TypeError,
     "fmt must be a block format (a name or a BlockFormat), not ElementFormat('fp8_e4m3')"),
    ({"fmt": "nope"}, ValueError, None),
    ({"k": 0}, ValueError, "k must be a positive integer, not 0"),
    ({"fmt": "mxsf_tile"}, ValueError,
     "fmt must be an OCP MX block format (one fp or int element format, E8M0 scale, floor "
     "rule, RNE, 1-D blocks) or mxsf, not 'mxsf_tile'"),
    ({"fmt": "mxint8_mase"}, ValueError,
     "fmt must be an OCP MX block format (one fp or int element format, E8M0 scale, floor "
     "rule, RNE, 1-D blocks) or mxsf, not 'mxint8_mase'"),
    ({"in_kind": "float"}, ValueError,
     "in_kind must be one of ('fixed', 'fp32'), not 'float'"),
    ({"in_kind": "fp32", "in_width": 24}, ValueError,
     "in_width applies to in_kind 'fixed' only; leave it None for 'fp32', not 24"),
    ({"in_kind": "fp32", "in_frac": 0}, ValueError,
     "in_frac applies to in_kind 'fixed' only; leave it None for 'fp32', not 0"),
    ({"in_width": 1}, ValueError, "in_width must be an integer in 2..53, not 1"),
    ({"in_width": 54}, ValueError, "in_width must be an integer in 2..53, not 54"),
    ({"in_frac": 1.5}, TypeError, "in_frac must be an integer, not 1.5"),
    ({"in_width": 53, "in_frac": -100}, ValueError,
     "in_frac -100 with in_width 53 gives scale exponents in [-127, 144], outside E8M0's "
     "[-127, 127] (or in_frac above 1000)"),
    ({"pipeline": 0}, ValueError, "pipeline must be in 1..6, not 0"),
    ({"pipeline": 7}, ValueError, "pipeline must be in 1..6, not 7"),
    ({"pipeline": -1}, ValueError, "pipeline must be in 1..6, not -1"),
    ({"pipeline": "2"}, TypeError, "pipeline must be an integer, not '2'"),
    ({"pipeline": 2.0}, TypeError, "pipeline must be an integer, not 2.0"),
    ({"pipeline": True}, TypeError, "pipeline must be an integer, not True"),
    ({"pipeline": None}, TypeError, "pipeline must be an integer, not None"),
])
def test_init_wrong(kwargs, exc, msg):
    kw = {"fmt": "mxfp8_e4m3", **kwargs}
    with pytest.raises(exc) as info:
        Requantizer(**kw)
    if msg is None:
        assert str(info.value).startswith("fmt must be a block format name, one of ")
        assert str(info.value).endswith("; not 'nope'")
    else:
        assert str(info.value) == msg
