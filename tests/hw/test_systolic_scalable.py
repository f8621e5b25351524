"""The precision-scalable array (ScalableArray, ScalablePE) against golden.arith.gemm, bit
for bit, in every mode; mode changes between operations; parameter errors."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from mxhw import golden
from mxhw.golden.arith import FP32, fixed
from mxhw.golden.quantize import MXArray
from mxhw.sim import run, stream_recv, stream_send
from mxhw.systolic import (DEFAULT_MODES, RowAccumulator, ScalableArray, ScalableBlockSumPE,
                           ScalablePE)
from mxhw.systolic.driver import tile_order
from mxhw.systolic.grid import array_block_format
from mxhw.systolic.scalable import scalable_beats
from mxhw.systolic.scalable_pe import split_multiply
from support.hyp import budget
from support.systolic import (ACC, Harness, _rngs, acc_strategy, assert_raises, compare,
                              mx_operands, random_operand, waits)

#: the lanes (MACs per PE and cycle) each default mode must reach
LANES = {"mxint8": 1, "mxfp8_e4m3": 2, "mxfp6_e2m3": 2, "mxfp4": 4}


def check_ops(dut, ops, seed=0, p_stall=0.0, p_idle=0.0):
    """Every operation ``(a, b)`` in ``ops`` (each in its own mode) through ``dut``, the
    operations' tiles back to back in one stream: each result equals golden."""
    rng_i, rng_o = _rngs(seed)
    R, C = dut.rows, dut.cols
    got = [{} for _ in ops]

    async def producer(ctx):
        beats = [beat for a, b in ops
                 for m0, n0 in tile_order(a.shape[0], b.shape[1], R, C)
                 for beat in scalable_beats(dut, a, b, m0, n0)]
        await stream_send(ctx, dut.i, beats, rng_i, p_idle)

    async def consumer(ctx):
        for n, (a, b) in enumerate(ops):
            for m0, n0 in tile_order(a.shape[0], b.shape[1], R, C):
                for i, r in enumerate(await stream_recv(ctx, dut.o, R, rng_o, p_stall)):
                    for j in range(C):
                        got[n][m0 + i, n0 + j] = (r.data[j], r.special[j])

    run(dut, producer, consumer)
    for n, (a, b) in enumerate(ops):
        acc = dut.acc
        M, N = a.shape[0], b.shape[1]
        compare({key: v for key, v in got[n].items() if key[0] < M and key[1] < N},
                a, b, acc)


# ---- the split multiplier against Python's products ----------------------------------------

@budget(40)
@given(a=st.integers(0, 255), b=st.integers(0, 255))
def test_split_multiply(a, b):
    """The full product and every 4 x 4 / 2 x 2 lane product equal Python's."""
    res = {}

    def build(m, h):
        res.update(split_multiply(m, h.a, h.b))
    from amaranth.lib.wiring import In, Out
    dut = Harness({"a": In(8), "b": In(8), "o": Out(1)}, build)

    async def tb(ctx):
        ctx.set(dut.a, a)
        ctx.set(dut.b, b)
        assert ctx.get(res[8][0]) == a * b
        for s in (4, 2):
            for n, p in enumerate(res[s]):
                da, db = (a >> (s * n)) & ((1 << s) - 1), (b >> (s * n)) & ((1 << s) - 1)
                assert ctx.get(p) == da * db, (s, n)
    run(dut, tb, clock=None)


# ---- the array in every mode ------------------------------------------------------------

def test_lanes():
    """MXINT8 1, MXFP8 / MXFP6 2, MXFP4 4 MACs per PE and cycle."""
    arr = ScalableArray(2, 3, acc=ACC)
    for f, lanes in LANES.items():
        assert arr.macs_per_cycle(f) == 6 * lanes


@pytest.mark.parametrize("fmt", DEFAULT_MODES)
@budget(6, suppress_health_check=list(HealthCheck))
@given(data=st.data(), rows=st.integers(1, 3), cols=st.integers(1, 3), M=st.integers(1, 4),
       N=st.integers(1, 4), nblk=st.integers(1, 2), acc=acc_strategy(), nan=st.booleans(),
       zero=st.booleans(), gaps=st.tuples(waits(), waits()), pipeline=st.integers(0, 4),
       shared=st.booleans())
def test_array_matches_golden(fmt, data, rows, cols, M, N, nblk, acc, nan, zero, gaps,
                              pipeline, shared):
    """Drawn codes and scales (NaN scales, zero blocks), shapes, accumulations, pipelines,
    row-shared or per-PE accumulators, input gaps and output stalls, each mode: equal to
    golden."""
    a, b = data.draw(mx_operands(fmt, fmt, M, N, nblk, nan=nan, zero=zero))
    check_ops(ScalableArray(rows, cols, acc=acc, pipeline=pipeline, shared=shared),
              [(a, b)], gaps, 0.5, 0.5)


@budget(6, suppress_health_check=list(HealthCheck))
@given(data=st.data(), order=st.permutations(DEFAULT_MODES), acc=acc_strategy(),
       gaps=st.tuples(waits(), waits()))
def test_mode_changes(data, order, acc, gaps):
    """Operations in every mode, in drawn order, back to back in one stream (the mode
    changes between tiles with no drain): each equals golden."""
    ops = [data.draw(mx_operands(f, f, 3, 2, 1, nan=True, zero=True)) for f in order]
    check_ops(ScalableArray(2, 2, acc=acc), ops, gaps, 0.3, 0.3)


def test_shared_eight_columns():
    """The widest row the row-shared accumulators serve with MXFP4 (8 columns: a block
    end per cycle), every mode in turn, saturating: equal to golden."""
    rng = np.random.default_rng(11)
    arr = ScalableArray(1, 8, acc=fixed(16, 4, "saturate", "rne"), pipeline=4)
    assert arr.shared
    ops = [(random_operand(rng, f, (1, 64), 1, spread=12, nan_p=0.05),
            random_operand(rng, f, (64, 8), 0, spread=12)) for f in DEFAULT_MODES]
    check_ops(arr, ops, 2, 0.2, 0.2)


def test_saturation_nan_and_modes_random():
    """Fixed examples: large magnitudes into a narrow saturating accumulator, NaN scales,
    FP8's NaN codes, every mode in turn on a 3 x 2 array."""
    rng = np.random.default_rng(5)
    ops = []
    for f in DEFAULT_MODES:
        a = random_operand(rng, f, (4, 64), 1, spread=12, nan_p=0.1, zero_block_p=0.1)
        b = random_operand(rng, f, (64, 3), 0, spread=12, nan_p=0.1)
        ops.append((a, b))
    el = ops[1][0].elements.copy()
    el[0, 5] = 0x7F                                  # an E4M3 NaN code
    ops[1] = (MXArray(ops[1][0].fmt, ops[1][0].shape, 1, el,
                                      ops[1][0].scales, None), ops[1][1])
    for acc in (fixed(16, 4, "saturate", "rne"), fixed(20, 8, "wrap", "floor")):
        check_ops(ScalableArray(3, 2, acc=acc, pipeline=4), ops, 1, 0.2, 0.2)


def test_other_mode_sets():
    """The E5M2 and E3M2 formats (and a single mode): equal to golden."""
    rng = np.random.default_rng(7)
    modes = ("mxfp8_e5m2", "mxfp6_e3m2", "mxint8")
    ops = [(random_operand(rng, f, (2, 32), 1), random_operand(rng, f, (32, 2), 0))
           for f in modes]
    check_ops(ScalableArray(2, 2, modes, acc=ACC, pipeline=2), ops)
    check_ops(ScalableArray(2, 2, ("mxfp4",), acc=ACC, pipeline=0), ops[:0] + [
        (random_operand(rng, "mxfp4", (2, 64), 1), random_operand(rng, "mxfp4", (64, 2), 0))])


# ---- parameters ---------------------------------------------------------------------------

GOOD = {"rows": 2, "cols": 2, "acc": ACC}


@pytest.mark.parametrize("kw, exc, msg", [
    ({"rows": 0}, ValueError, "rows"),
    ({"cols": 1.5}, TypeError, "cols"),
    ({"modes": "mxfp4"}, TypeError,
     "modes must be a sequence of block format names, not 'mxfp4'"),
    ({"modes": ()}, ValueError, "modes must name at least one block format"),
    ({"modes": ("mxfp4", "nope")}, ValueError, "modes[1] must be a block format name"),
    ({"modes": ("mxfp4", "mxfp4")}, ValueError, "modes[1]: mxfp4_e2m1 is listed twice"),
    ({"modes": ("mxsf",)}, ValueError, "modes[0]: mxsf has element modes per block"),
    ({"acc": None}, TypeError, "acc must be a golden.arith.Accumulation, not None"),
    ({"acc": FP32}, ValueError,
     "the scalable array implements fixed-point accumulation only, not 'fp32'"),
    ({"pipeline": 5}, ValueError, "pipeline"),
    ({"shared": 1}, TypeError, "shared"),
    ({"cols": 9, "shared": True}, ValueError,
     "shared=True needs cols <= 8 (the fewest transfers per block of the modes: at most "
     "one block end per row and cycle), not cols=9"),
])
def test_init_wrong_params(kw, exc, msg):
    assert_raises(ScalableArray, GOOD, kw, exc, msg, prefix=True)


def test_init_wrong_mode_mix():
    """A mode whose block size or scales differ from modes[0]'s."""
    b16 = dataclasses.replace(golden.formats.get("mxfp4"), name="mxfp4_b16", block=16)
    assert_raises(ScalableArray, GOOD, {"modes": ("mxint8", b16)}, ValueError,
                  "modes[1]: mxfp4_b16 has e8m0 scales and blocks of 16; every mode must "
                  "match modes[0] (e8m0, 32)")


def test_init_wrong_codec_and_width():
    """MX+ (another codec) and a significand wider than the multiplier."""
    assert_raises(ScalableArray, GOOD, {"modes": ("mxfp4_plus",)}, ValueError,
                  "modes[0]: mxfp4_plus has the mxplus codec", prefix=True)
    assert_raises(ScalableArray, GOOD, {"modes": ("mxfp4", "mxint8_mase")}, ValueError,
                  "modes[1]: mxint8_mase has sexp8 scales", prefix=True)
    fp16 = dataclasses.replace(golden.formats.get("mxint8"), name="mxfp16",
                               candidates=(golden.formats.get("fp16"),))
    assert_raises(ScalableArray, GOOD, {"modes": ("mxfp4", fp16)}, ValueError,
                  "modes[1]: mxfp16 has 11-bit significands; the scalable PE's multiplier "
                  "takes at most 8")


def test_beats_wrong_format():
    arr = ScalableArray(1, 1, ("mxint8", "mxfp4"), acc=ACC)
    rng = np.random.default_rng(0)
    a = random_operand(rng, "mxfp6_e2m3", (1, 32), 1)
    with pytest.raises(ValueError, match="fmt mxfp6_e2m3 is not a mode of this array"):
        scalable_beats(arr, a, a, 0, 0)


def test_pe_ports():
    pe = ScalablePE(DEFAULT_MODES, ACC)
    assert pe.word == 16 and pe.latency == 1
    assert len(pe.mode) == 2
    bs = ScalableBlockSumPE(DEFAULT_MODES, pipeline=2)
    assert bs.word == 16 and bs.latency == 2 and bs.lsb_exp == pe.lsb_exp == -18
    assert len(bs.block_sum) == pe.block_sum_width
    with pytest.raises(ValueError, match="pipeline"):
        ScalableBlockSumPE(DEFAULT_MODES, pipeline=5)


def test_shared_choice():
    """Row-shared by default where the columns allow (cols <= 8 with MXFP4, <= 16
    without), per-PE accumulators beyond."""
    assert ScalableArray(4, 8, acc=ACC).shared
    assert not ScalableArray(2, 9, acc=ACC).shared
    assert ScalableArray(2, 16, ("mxint8", "mxfp8_e4m3"), acc=ACC).shared
    assert not ScalableArray(2, 2, acc=ACC, shared=False).shared


def test_row_accumulator_grid():
    """RowAccumulator's ``grid``: the block sums' width and LSB weight."""
    f = array_block_format("mxfp4")
    ra = RowAccumulator(f, f, ACC, 2, grid=(-18, 41))
    assert len(ra.block_sum[0]) == 41
    assert len(RowAccumulator(f, f, ACC, 2).block_sum[0]) != 41
    with pytest.raises(TypeError, match=r"grid must be None or a pair \(lsb_exp, width\)"):
        RowAccumulator(f, f, ACC, 2, grid=41)


def test_ppa_configs():
    """The PPA suite lists the scalable arrays per size and mode with the mode's MACs per
    cycle (one circuit: the same RTL for every mode of a size)."""
    from mxhw.bench import ppa
    from mxhw.bench.ppa.configs import SCALABLE_SIZES
    for n in SCALABLE_SIZES:
        for f, lanes in LANES.items():
            cfg = ppa.CONFIGS[f"scalable_{n}x{n}_{f}"]
            assert cfg.block == "scalable" and cfg.macs_per_cycle == n * n * lanes
            assert cfg.params["lanes"] == lanes
    arr = ppa.CONFIGS["scalable_4x4_mxfp4"].make()
    assert isinstance(arr, ScalableArray) and (arr.rows, arr.cols) == (4, 4)


@pytest.mark.parametrize("rows, cols, pipeline", [(1, 1, 0), (2, 3, 4), (3, 2, 2)])
def test_latency(rows, cols, pipeline):
    """The first result row is valid ``latency`` cycles after the tile's last transfer."""
    rng = np.random.default_rng(3)
    dut = ScalableArray(rows, cols, acc=ACC, pipeline=pipeline)
    a = random_operand(rng, "mxfp4", (rows, 32), 1)
    b = random_operand(rng, "mxfp4", (32, cols), 0)
    beats = scalable_beats(dut, a, b, 0, 0)
    seen = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 0)
        for n, beat in enumerate(beats):
            ctx.set(dut.i.payload, beat)
            ctx.set(dut.i.valid, 1)
            *_, ready = await ctx.tick().sample(dut.i.ready)
            assert ready
        ctx.set(dut.i.valid, 0)
        for t in range(1, 100):
            if ctx.get(dut.o.valid):
                seen["t"] = t
                break
            await ctx.tick()
    run(dut, tb)
    assert seen["t"] == dut.latency
