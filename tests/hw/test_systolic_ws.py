"""Weight-stationary SystolicArray against golden.arith.gemm (fixed accumulation; FP32:
tests/hw/test_systolic_ws_fp32.py, through :func:`check_ws`)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mxhw.golden.arith import FP32, fixed, gemm
from mxhw.golden.quantize import quantize
from mxhw.sim import run, seeded_rng, stream_recv, stream_send
from mxhw.systolic import SystolicArray
from mxhw.systolic.driver import tile_order, ws_beats, ws_passes
from mxhw.systolic.pe import PE_PIPELINE_MAX

from test_systolic import FORMATS, acc_strategy, random_operand


def ws_array(a, b, rows, cols, acc, **kw):
    return SystolicArray(rows, cols, a.fmt, b.fmt, acc=acc, dataflow="weight_stationary", **kw)


def check_ws(a, b, rows, cols, acc, seed=0, p_stall=0.0, p_idle=0.0, **kw):
    """Run ``a @ b`` through a weight-stationary array; compare with golden bit for bit
    (``fixed``: the accumulator integers; ``fp32``: the float32 bit patterns, any NaN
    where golden gives NaN)."""
    M, N = a.shape[0], b.shape[1]
    dut = ws_array(a, b, rows, cols, acc, **kw)
    D = dut.depth
    tiles = tile_order(M, N, D, cols)
    got = {}

    async def producer(ctx):
        await stream_send(ctx, dut.i, ws_beats(a, b, rows, cols, D), seeded_rng(seed), p_idle)

    async def consumer(ctx):
        for m0, n0 in tiles:
            for i, r in enumerate(await stream_recv(ctx, dut.o, D, seeded_rng(seed + 1),
                                                    p_stall)):
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.data[j], r.special[j])

    run(dut, producer, consumer)
    if acc.mode == "fp32":
        val = gemm(a, b, acc)
        raw = val.view(np.uint32).astype(np.int64)
        got = {key: (d & 0xFFFF_FFFF, s) for key, (d, s) in got.items()}
    else:
        val, raw = gemm(a, b, acc, return_raw=True)
    for (mm, nn), v in np.ndenumerate(val):
        d, s = got[mm, nn]
        if np.isnan(v):
            assert s, (mm, nn)
            if acc.mode == "fp32":
                assert np.isnan(np.uint32(d).view(np.float32)), (mm, nn, hex(d))
        else:
            assert not s and d == raw[mm, nn], (mm, nn, d, raw[mm, nn])


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(fa=st.sampled_from(FORMATS), fb=st.sampled_from(FORMATS),
       rows=st.integers(1, 4), cols=st.integers(1, 4), depth=st.integers(1, 5),
       M=st.integers(1, 6), N=st.integers(1, 6), nblk=st.integers(1, 2),
       acc=acc_strategy(), pipeline=st.integers(0, PE_PIPELINE_MAX),
       seed=st.integers(0, 2**16), nan_p=st.sampled_from([0.0, 0.0, 0.2]),
       zero_p=st.sampled_from([0.0, 0.3]), p_stall=st.sampled_from([0.0, 0.5]),
       p_idle=st.sampled_from([0.0, 0.3]))
def test_ws_matches_golden(fa, fb, rows, cols, depth, M, N, nblk, acc, pipeline, seed, nan_p,
                           zero_p, p_stall, p_idle):
    rng = np.random.default_rng(seed)
    K = 32 * nblk
    a = random_operand(rng, fa, (M, K), 1, nan_p=nan_p, zero_block_p=zero_p)
    b = random_operand(rng, fb, (K, N), 0, nan_p=nan_p, zero_block_p=zero_p)
    check_ws(a, b, rows, cols, acc, seed, p_stall, p_idle, pipeline=pipeline, depth=depth)


def test_ws_saturation_and_wrap():
    rng = np.random.default_rng(11)
    a = quantize(np.full((3, 64), 1e6), "mxint8", axis=1)
    b = quantize(np.full((64, 2), -1e6) * rng.choice([-1, 1], (64, 2)), "mxint8", axis=0)
    for ov in ("saturate", "wrap"):
        acc = fixed(16, 0, ov, "floor")
        _, raw = gemm(a, b, acc, return_raw=True)
        if ov == "saturate":
            assert {int(x) for x in raw.ravel()} & {-(1 << 15), (1 << 15) - 1}
        for pipeline in (0, PE_PIPELINE_MAX):
            check_ws(a, b, 4, 2, acc, pipeline=pipeline, depth=3)


def test_ws_rounding_right_shift():
    rng = np.random.default_rng(12)
    a = quantize(rng.standard_normal((3, 32)) * 2.0**-20, "mxfp8_e4m3", axis=1)
    b = quantize(rng.standard_normal((32, 2)), "mxfp8_e4m3", axis=0)
    for r in ("floor", "rne"):
        for pipeline in range(PE_PIPELINE_MAX + 1):
            check_ws(a, b, 4, 2, fixed(24, 22, "saturate", r), seed=3, p_stall=0.3,
                     pipeline=pipeline)


def test_ws_nan_scale_and_zero_blocks():
    rng = np.random.default_rng(13)
    a = random_operand(rng, "mxfp4", (3, 96), 1, nan_p=0.3, zero_block_p=0.3)
    b = random_operand(rng, "mxfp8_e5m2", (96, 3), 0, nan_p=0.2, zero_block_p=0.3)
    acc = fixed(32, 16)
    assert np.isnan(gemm(a, b, acc)).any()
    check_ws(a, b, 3, 3, acc, p_idle=0.2)


def test_ws_one_block_rows_beyond_block():
    """K of one block; rows = 64 > k = 32 (a pass covers one block, rows beyond idle)."""
    rng = np.random.default_rng(14)
    a = random_operand(rng, "mxint8", (2, 32), 1)
    b = random_operand(rng, "mxfp6_e2m3", (32, 2), 0)
    check_ws(a, b, 64, 1, fixed(40, 20, "saturate", "rne"))
    check_ws(a, b, 1, 1, fixed(40, 20, "saturate", "rne"))


@pytest.mark.parametrize("acc", [fixed(32, 12), FP32], ids=["fixed", "fp32"])
def test_ws_latency_and_full_rate(acc):
    """No back-pressure, depth >= rows: one transfer every cycle (only the first pass's
    weight load is extra), and the first result row appears ``latency`` cycles after the
    first last-pass activation transfer."""
    rng = np.random.default_rng(15)
    a = random_operand(rng, "mxint8", (8, 64), 1)
    b = random_operand(rng, "mxfp4", (64, 6), 0)
    for pipeline in (0, 2, PE_PIPELINE_MAX):
        dut = ws_array(a, b, 4, 3, acc, pipeline=pipeline, depth=4)
        beats = ws_beats(a, b, 4, 3, 4)
        first_last = next(n for n, x in enumerate(beats) if x["act"] and x["last"])
        n_out = len(tile_order(8, 6, 4, 3)) * 4
        seen = {}

        async def tb(ctx):
            taken, out, cycle = 0, 0, 0
            ctx.set(dut.o.ready, 1)
            while out < n_out:
                assert cycle < 10 * len(beats), "timeout"
                if taken < len(beats):
                    ctx.set(dut.i.payload, beats[taken])
                ctx.set(dut.i.valid, taken < len(beats))
                _, _, i_ready, o_valid = await ctx.tick().sample(
                    dut.i.ready, dut.o.valid)
                if o_valid:
                    seen.setdefault("first_out", cycle)
                    out += 1
                if taken < len(beats):
                    assert i_ready, ("stall", taken)
                    if taken == first_last:
                        seen["first_last"] = cycle
                    taken += 1
                cycle += 1

        run(dut, tb)
        assert seen["first_out"] - seen["first_last"] == dut.latency


def test_ws_passes_cover_k():
    """Driver check: every K element of every block is covered exactly once, block by
    block in K order."""
    rng = np.random.default_rng(16)
    a = random_operand(rng, "mxint8", (1, 64), 1)
    b = random_operand(rng, "mxint8", (64, 1), 0)
    for rows in (1, 3, 8, 40):
        passes = ws_passes(a, b, rows, 1, 1, 0, 0)
        assert len(passes) == 2 * -(-32 // rows)
        assert sum(p[0][0]["block_end"] for p in passes) == 2
        assert passes[-1][0][0]["last"] == 1
        assert [len(p[1]) for p in passes] == [rows] * len(passes)


def test_ws_init():
    dut = SystolicArray(3, 2, "mxint8", "mxint8", acc=fixed(32, 16),
                        dataflow="weight_stationary")
    assert (dut.depth, dut.dataflow) == (3, "weight_stationary")
    assert set(dut.in_layout.members) == {"a", "a_scale", "w", "w_scale", "act", "w_valid",
                                          "block_first", "block_end", "tile_first", "last"}
