"""GemmEngine against golden.arith.gemm; telemetry; constructor errors."""

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mxhw import golden
from mxhw.golden.arith import FP32, fixed, gemm
from mxhw.sim import run, seeded_rng, stream_recv, stream_send
from mxhw.systolic import GemmEngine
from mxhw.systolic.driver import array_beats, tile_order, ws_engine_beats

from test_systolic import FORMATS, random_operand


def engine_beats(a, b, rows, cols):
    out = []
    for m0, n0 in tile_order(a.shape[0], b.shape[1], rows, cols):
        for beat in array_beats(a, b, rows, cols, m0, n0):
            del beat["last"]
            out.append(beat)
    return out


def run_engine(a, b, rows, cols, acc, seed=0, p_idle=0.0, p_stall=0.0, backend=None, **kw):
    """Run a GEMM on a GemmEngine; returns (results dict, telemetry dict)."""
    M, K = a.shape
    N = b.shape[1]
    dut = GemmEngine(rows, cols, a.fmt, b.fmt, M, N, K, acc=acc, **kw)
    D = dut.tile_rows
    tiles = tile_order(M, N, D, cols)
    got, tel = {}, {}
    if dut.array.dataflow == "weight_stationary":
        beats = ws_engine_beats(a, b, rows, cols, D)
    else:
        beats = engine_beats(a, b, rows, cols)

    async def producer(ctx):
        await stream_send(ctx, dut.i, beats, seeded_rng(seed), p_idle)

    async def consumer(ctx):
        out = await stream_recv(ctx, dut.o, len(tiles) * D, seeded_rng(seed + 1), p_stall)
        for t, (m0, n0) in enumerate(tiles):
            for i in range(D):
                r = out[t * D + i]
                assert r.last == (t * D + i == len(out) - 1)
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.row.data[j], r.row.special[j])
        await ctx.tick()
        assert ctx.get(dut.done)
        for name in ("busy", "stalled", "idle"):
            tel[name] = ctx.get(getattr(dut, name))

    run(dut, producer, consumer, backend=backend)
    return got, tel


def check(a, b, got, acc):
    val, raw = gemm(a, b, acc, return_raw=True)
    for (mm, nn), v in np.ndenumerate(val):
        d, s = got[mm, nn]
        if np.isnan(v):
            assert s, (mm, nn)
        else:
            assert not s and d == raw[mm, nn], (mm, nn, d, raw[mm, nn])


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 4), cols=st.integers(1, 4),
       M=st.integers(1, 7), N=st.integers(1, 7), nblk=st.integers(1, 2),
       W=st.integers(12, 40), F=st.integers(-2, 20), ov=st.sampled_from(["saturate", "wrap"]),
       rnd=st.sampled_from(["floor", "rne"]), seed=st.integers(0, 2**16),
       nan_p=st.sampled_from([0.0, 0.1]), p_stall=st.sampled_from([0.0, 0.5]),
       p_idle=st.sampled_from([0.0, 0.3]), pipeline=st.integers(0, 4))
def test_engine_matches_golden(fa, fb, rows, cols, M, N, nblk, W, F, ov, rnd, seed, nan_p,
                               p_stall, p_idle, pipeline):
    rng = np.random.default_rng(seed)
    K = 32 * nblk
    acc = fixed(W, F, ov, rnd)
    a = random_operand(rng, fa, (M, K), 1, nan_p=nan_p, zero_block_p=0.2)
    b = random_operand(rng, fb, (K, N), 0, nan_p=nan_p, zero_block_p=0.2)
    got, tel = run_engine(a, b, rows, cols, acc, seed, p_idle, p_stall, pipeline=pipeline)
    check(a, b, got, acc)
    tiles = len(tile_order(M, N, rows, cols))
    assert tel["busy"] == tiles * K


def test_engine_full_speed_utilisation():
    """Operands every cycle, results always taken: the array never stalls."""
    rng = np.random.default_rng(7)
    a = random_operand(rng, "mxint8", (8, 64), 1)
    b = random_operand(rng, "mxfp4", (64, 8), 0)
    acc = fixed(32, 12)
    got, tel = run_engine(a, b, 4, 4, acc)
    check(a, b, got, acc)
    assert tel["busy"] == 4 * 64 and tel["stalled"] == 0


def _acceptance(rows, cols, fa, fb, dataflow, **kw):
    rng = np.random.default_rng(64)
    a = random_operand(rng, fa, (64, 64), 1)
    b = random_operand(rng, fb, (64, 64), 0)
    acc = fixed(32, 16, "saturate", "rne")
    got, tel = run_engine(a, b, rows, cols, acc, dataflow=dataflow, **kw)
    check(a, b, got, acc)
    return tel


@pytest.mark.slow
def test_acceptance_16x16_os_mxfp4():
    _acceptance(16, 16, "mxfp4", "mxfp4", "output_stationary")


def check_fp32(a, b, got):
    """Engine results (float32 bits) against golden's ``fp32`` mode, bit for bit; NaN where
    golden gives NaN."""
    val = gemm(a, b, FP32).astype(np.float32)
    for (mm, nn), v in np.ndenumerate(val):
        d, s = got[mm, nn]
        if np.isnan(v):
            assert s, (mm, nn)
        else:
            # data is signed(32): its bits are the float32's
            assert not s and d & 0xFFFFFFFF == int(v.view(np.uint32)), (mm, nn, hex(d), v)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 3), cols=st.integers(1, 3),
       dataflow=st.sampled_from(["output_stationary", "weight_stationary"]),
       M=st.integers(1, 5), N=st.integers(1, 5), nblk=st.integers(1, 2),
       seed=st.integers(0, 2**16), nan_p=st.sampled_from([0.0, 0.1]),
       p_stall=st.sampled_from([0.0, 0.5]), pipeline=st.integers(0, 4))
def test_engine_fp32_matches_golden(fa, fb, rows, cols, dataflow, M, N, nblk, seed, nan_p,
                                    p_stall, pipeline):
    """FP32 accumulation through the engine, both dataflows."""
    rng = np.random.default_rng(seed)
    K = 32 * nblk
    a = random_operand(rng, fa, (M, K), 1, nan_p=nan_p, zero_block_p=0.2)
    b = random_operand(rng, fb, (K, N), 0, nan_p=nan_p, zero_block_p=0.2)
    kw = {"dataflow": dataflow, "depth": rows + 1} if dataflow == "weight_stationary" else {}
    got, _ = run_engine(a, b, rows, cols, FP32, seed, 0.0, p_stall, pipeline=pipeline, **kw)
    check_fp32(a, b, got)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 4), cols=st.integers(1, 4), extra=st.integers(0, 3),
       M=st.integers(1, 7), N=st.integers(1, 7), nblk=st.integers(1, 2),
       W=st.integers(12, 40), F=st.integers(-2, 20), ov=st.sampled_from(["saturate", "wrap"]),
       rnd=st.sampled_from(["floor", "rne"]), seed=st.integers(0, 2**16),
       nan_p=st.sampled_from([0.0, 0.1]), p_stall=st.sampled_from([0.0, 0.5]),
       p_idle=st.sampled_from([0.0, 0.3]), pipeline=st.integers(0, 4))
def test_ws_engine_matches_golden(fa, fb, rows, cols, extra, M, N, nblk, W, F, ov, rnd, seed,
                                  nan_p, p_stall, p_idle, pipeline):
    """Weight-stationary engine (depth = rows + extra): golden results, and busy counts
    every transfer the array took (activation rows plus the first weight load)."""
    rng = np.random.default_rng(seed)
    K = 32 * nblk
    acc = fixed(W, F, ov, rnd)
    a = random_operand(rng, fa, (M, K), 1, nan_p=nan_p, zero_block_p=0.2)
    b = random_operand(rng, fb, (K, N), 0, nan_p=nan_p, zero_block_p=0.2)
    D = rows + extra
    got, tel = run_engine(a, b, rows, cols, acc, seed, p_idle, p_stall, pipeline=pipeline,
                          dataflow="weight_stationary", depth=D)
    check(a, b, got, acc)
    tiles = len(tile_order(M, N, D, cols))
    assert tel["busy"] == tiles * nblk * -(-32 // rows) * D + rows


def test_ws_engine_full_speed():
    """Operands every cycle, results always taken: the weight-stationary array never
    stalls."""
    rng = np.random.default_rng(8)
    a = random_operand(rng, "mxint8", (8, 64), 1)
    b = random_operand(rng, "mxfp4", (64, 8), 0)
    acc = fixed(32, 12)
    got, tel = run_engine(a, b, 4, 4, acc, dataflow="weight_stationary")
    check(a, b, got, acc)
    assert tel["busy"] == 4 * 2 * 8 * 4 + 4 and tel["stalled"] == 0


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(K=48), ValueError, "K must be a multiple of the block size 32, not 48"),
    (dict(M=0), ValueError, "M must be a positive integer, not 0"),
    (dict(N="4"), TypeError, "N must be a positive integer, not '4'"),
    (dict(fifo_depth=0), ValueError, "fifo_depth must be a positive integer, not 0"),
    (dict(rows=0), ValueError, "rows must be a positive integer, not 0"),
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


@pytest.mark.slow
def test_acceptance_8x8_ws_mxint8():
    """Issue #6: an 8 x 8 weight-stationary MXINT8 array computes a 64 x 64 x 64 GEMM
    equal to golden (tiles of 8 x 8 outputs, passes of 8 K elements)."""
    tel = _acceptance(8, 8, "mxint8", "mxint8", "weight_stationary")
    # 64 tiles x 8 passes x 8 activation rows, plus the first pass's 8 weight rows
    assert tel["busy"] == 64 * 8 * 8 + 8
