"""GemmEngine (the GEMM sequencer behind an operand FIFO) against golden.arith.gemm, both
dataflows; telemetry; constructor errors."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from amaranth.sim import Simulator

from mxhw.golden.arith import FP32, fixed
from mxhw.golden.quantize import quantize
from mxhw.systolic import GemmEngine
from mxhw.systolic.driver import tile_order, ws_beats
from mxhw.systolic.seq import GemmSequencer

from support.hyp import budget
from support.soc import (ENGINE_FORMATS, check_engine, check_engine_fp32, gaussian_operand,
                         mx_operands, run_engine)

# the names other test modules still take from here (they move to support.soc)
check = check_engine
check_fp32 = check_engine_fp32
__all__ = ["run_engine", "check", "check_fp32"]

DATAFLOWS = ["output_stationary", "weight_stationary"]


@st.composite
def gemm_case(draw, max_side=4, max_mn=7):
    """An engine GEMM: formats, array shape, weight-stationary extra depth, M x K and
    K x N operands drawn as codes (NaN scales, zero blocks)."""
    fa, fb = draw(st.sampled_from(ENGINE_FORMATS)), draw(st.sampled_from(ENGINE_FORMATS))
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    M, N, K = (draw(st.integers(1, max_mn)), draw(st.integers(1, max_mn)),
               32 * draw(st.integers(1, 2)))
    nan = draw(st.booleans())
    a = draw(mx_operands(fa, (M, K), 1, nan=nan))
    b = draw(mx_operands(fb, (K, N), 0, nan=nan))
    return rows, cols, a, b


accs = st.builds(fixed, st.integers(12, 40), st.integers(-2, 20),
                 st.sampled_from(["saturate", "wrap"]), st.sampled_from(["floor", "rne"]))
handshake = dict(seed=st.integers(0, 2**16), p_stall=st.sampled_from([0.0, 0.5]),
                 p_idle=st.sampled_from([0.0, 0.3]), pipeline=st.integers(0, 4))


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@budget(8)
@given(case=gemm_case(), extra=st.integers(0, 3), acc=accs, **handshake)
def test_engine_matches_golden(dataflow, case, extra, acc, seed, p_stall, p_idle, pipeline):
    """Golden results through either dataflow (weight-stationary: depth = rows + extra),
    and ``busy`` counts every transfer the array took: output-stationary a K step per
    tile, weight-stationary the activation rows plus the first weight load."""
    rows, cols, a, b = case
    (M, K), N = a.shape, b.shape[1]
    ws = dataflow == "weight_stationary"
    kw = {"dataflow": dataflow, "depth": rows + extra} if ws else {}
    got, tel = run_engine(a, b, rows, cols, acc, seed, p_idle, p_stall, pipeline=pipeline,
                          **kw)
    check_engine(a, b, got, acc)
    if ws:
        tiles = len(tile_order(M, N, rows + extra, cols))
        assert tel["busy"] == tiles * (K // 32) * -(-32 // rows) * (rows + extra) + rows
    else:
        assert tel["busy"] == len(tile_order(M, N, rows, cols)) * K


@pytest.mark.parametrize("dataflow, busy", [
    ("output_stationary", 4 * 64),
    # 4 tiles x 2 blocks x 8 passes x 4 activation rows, plus the first 4 weight rows
    ("weight_stationary", 4 * 2 * 8 * 4 + 4),
])
def test_engine_full_speed(dataflow, busy):
    """Operands every cycle, results always taken: the array never stalls."""
    a = gaussian_operand(7, "mxint8", (8, 64), 1)
    b = gaussian_operand(8, "mxfp4", (64, 8), 0)
    acc = fixed(32, 12)
    got, tel = run_engine(a, b, 4, 4, acc, dataflow=dataflow)
    check_engine(a, b, got, acc)
    assert tel["busy"] == busy and tel["stalled"] == 0


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@budget(6)
@given(case=gemm_case(max_side=3, max_mn=5), **handshake)
def test_engine_fp32_matches_golden(dataflow, case, seed, p_stall, p_idle, pipeline):
    """FP32 accumulation through the engine, both dataflows."""
    rows, cols, a, b = case
    kw = {"dataflow": dataflow, "depth": rows + 1} if dataflow == "weight_stationary" else {}
    got, _ = run_engine(a, b, rows, cols, FP32, seed, p_idle, p_stall, pipeline=pipeline,
                        **kw)
    check_engine_fp32(a, b, got)


@pytest.mark.slow
@pytest.mark.parametrize("rows, fmt, dataflow, busy", [
    (16, "mxfp4", "output_stationary", None),
    # issue #6: 8 x 8 weight-stationary MXINT8, 64 tiles x 8 passes x 8 activation rows,
    # plus the first pass's 8 weight rows
    (8, "mxint8", "weight_stationary", 64 * 8 * 8 + 8),
])
def test_acceptance_64(rows, fmt, dataflow, busy):
    """A 64 x 64 x 64 GEMM on a square array equals golden."""
    a = gaussian_operand(64, fmt, (64, 64), 1)
    b = gaussian_operand(65, fmt, (64, 64), 0)
    acc = fixed(32, 16, "saturate", "rne")
    got, tel = run_engine(a, b, rows, rows, acc, dataflow=dataflow)
    check_engine(a, b, got, acc)
    if busy is not None:
        assert tel["busy"] == busy


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(K=48), ValueError, "K must be a multiple of the block size 32, not 48"),
    (dict(M=0), ValueError, "M must be >= 1, not 0"),
    (dict(N="4"), TypeError, "N must be an integer, not '4'"),
    (dict(fifo_depth=0), ValueError, "fifo_depth must be >= 1, not 0"),
    (dict(dataflow="weight_stationary", rows=4, depth=3), ValueError,
     "depth must be >= rows (4) for the weight-stationary engine (the next pass's weights "
     "load during the current pass), not 3"),
])
def test_engine_init_wrong(kw, exc, msg):
    args = dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxint8", M=4, N=4, K=64,
                acc=fixed(32, 16))
    args.update(kw)
    with pytest.raises(exc) as e:
        GemmEngine(**args)
    assert str(e.value) == msg


def test_engine_rows_wrong():
    """The array's own check (SystolicArray) reports a bad ``rows``."""
    with pytest.raises(ValueError, match="rows"):
        GemmEngine(0, 2, "mxfp4", "mxint8", 4, 4, 64, acc=fixed(32, 16))



def run_sequencer(dut, K, stalls):
    """Start ``dut`` (a GemmSequencer) with ``K`` and take its steps, ready held low in
    the cycles ``stalls`` marks (cyclically; never in the first of each round): the
    payloads taken."""
    got = []

    async def tb(ctx):
        ctx.set(dut.K, K)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycle = 0
        while ctx.get(dut.step.valid):
            i = cycle % max(1, len(stalls))
            ready = i == 0 or not stalls[i]
            ctx.set(dut.step.ready, ready)
            if ready:
                got.append(ctx.get(dut.step.payload))
            await ctx.tick()
            cycle += 1
            assert cycle < 100_000, "the run does not end"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got


@budget(20)
@given(rows=st.integers(1, 6), depth=st.integers(1, 6), nblk=st.integers(1, 2),
       tiles=st.integers(1, 3), stalls=st.lists(st.booleans(), max_size=40))
def test_sequencer_ws_schedule(rows, depth, nblk, tiles, stalls):
    """The weight-stationary schedule of GemmSequencer, taken with random back-pressure,
    against :func:`mxhw.systolic.driver.ws_beats` (the array's documented input): act and
    w_valid on every transfer, the block and tile flags on activation transfers; and, for
    a one-tile run, the operand indices (A word ``q * depth + i``, A scale word ``j * depth
    + i``, B rows and padding of the weight rows past the block)."""
    k, K = 32, 32 * nblk
    a = quantize(np.zeros((depth * tiles, K)), "mxint8", axis=1)
    b = quantize(np.zeros((K, 1)), "mxint8", axis=0)
    want = ws_beats(a, b, rows, 1, depth)
    dut = GemmSequencer("weight_stationary", rows, k, K, depth=depth, tiles=tiles)
    got = run_sequencer(dut, K, stalls)
    assert len(got) == len(want)
    P = -(-k // rows)
    acts = brow = 0
    for n, (g, w) in enumerate(zip(got, want)):
        assert (g.act, g.w_valid) == (w["act"], w["w_valid"]), n
        if w["act"]:
            assert (g.block_first, g.block_end, g.tile_first, g.last) == (
                w["block_first"], w["block_end"], w["tile_first"], w["last"]), n
        if tiles > 1:
            continue
        if g.act:
            q, i = divmod(acts, depth)
            assert (g.a, g.a_scale) == (acts, (q // P) * depth + i), n
            acts += 1
        if g.w_valid and not g.pad:
            assert g.b == brow and g.b_scale == brow // k, n
            brow += 1
    if tiles == 1:
        assert brow == K          # every real B row once, padding rows flagged


@budget(10)
@given(K=st.integers(1, 8), tiles=st.integers(1, 3),
       stalls=st.lists(st.booleans(), max_size=9))
def test_sequencer_os_schedule(K, tiles, stalls):
    """The output-stationary schedule: K steps per tile, ``k`` counting them, ``last`` on
    each tile's last."""
    dut = GemmSequencer("output_stationary", 1, 1, 8, tiles=tiles)
    got = [(p.k, p.last) for p in run_sequencer(dut, K, stalls)]
    assert got == [(s, s == K - 1) for _ in range(tiles) for s in range(K)]
