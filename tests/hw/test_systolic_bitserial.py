"""Output-stationary SystolicArray with bit-serial PEs (BitSerialMXMacPE) against
golden.arith.gemm (fixed accumulation); the PE alone; timing; constructor errors."""

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from support.hyp import budget
from mxhw import golden
from mxhw.golden.arith import fixed, gemm
from mxhw.golden.bitserial import serial_bits as golden_serial_bits
from mxhw.golden.quantize import MXArray, quantize
from mxhw.sim import run
from mxhw.formats import operand_element
from mxhw.systolic import BitSerialMXMacPE, SystolicArray
from mxhw.systolic import DEFAULT_PIPELINE
from mxhw.systolic.bitserial import SERIAL_BITS_MAX, serial_bits
from mxhw.systolic.driver import array_beats, tile_order
from mxhw.systolic import array_block_format
from mxhw.systolic.grid import PE_PIPELINE_MAX

from support.soc import check_engine, run_engine
from support.systolic import (ACC, FORMATS, acc_strategy, check_gemm, check_pe_tiles,
                              assert_raises, gap_source, mx_operands, pe_results, random_operand, waits)

#: Serial bits of each OCP MX weight element (the K step's cycles), from the descriptors.
SERIAL = {"mxfp4": 5, "mxfp6_e2m3": 7, "mxfp6_e3m2": 10, "mxfp8_e4m3": 19,
          "mxfp8_e5m2": 33, "mxint8": 8}
#: Weight formats of the property tests (the FP8 ones, 19 and 33 cycles per K step, have
#: their own smaller tests below).
FAST_B = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxint8", "mxint4"]


def test_serial_bits_from_int_table():
    for f, p in SERIAL.items():
        e = golden.formats.get(f).element
        assert serial_bits(e) == p
        fin = e.int_table[~e.nonfinite_mask]
        assert -(1 << (p - 1)) <= fin.min() and fin.max() < (1 << (p - 1))
        assert fin.min() < -(1 << (p - 2)) or fin.max() >= (1 << (p - 2))   # p is minimal


# ---- the array against golden ----------------------------------------------------------

@budget(20, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fa=st.sampled_from(FORMATS), fb=st.sampled_from(FAST_B),
       rows=st.integers(1, 4), cols=st.integers(1, 4),
       M=st.integers(1, 5), N=st.integers(1, 5), nblk=st.integers(1, 2),
       acc=acc_strategy(), nan=st.booleans(), zero=st.booleans(),
       gaps=st.tuples(waits(), waits()), pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_bitserial_array_matches_golden(data, fa, fb, rows, cols, M, N, nblk, acc, nan, zero,
                                        gaps, pipeline):
    """Shapes 1x1..4x4, K of 1..2 blocks, drawn codes and scales, tiles back to back,
    valid gaps and back-pressure on ``o``: every result equals golden's ``fixed`` GEMM."""
    a, b = data.draw(mx_operands(fa, fb, M, N, nblk, nan=nan, zero=zero))
    check_gemm(a, b, rows, cols, acc, gaps, 0.5, 0.5, pe="bitserial", pipeline=pipeline)


def with_nonfinite(mx, p, seed):
    """``mx`` with a fraction ``p`` of its element codes replaced by NaN/Inf codes."""
    f = golden.formats.get(mx.fmt.name).element
    bad = np.flatnonzero(f.nonfinite_mask)
    rng = np.random.default_rng(seed)
    el = mx.elements.copy()
    hit = rng.random(el.shape) < p
    el[hit] = rng.choice(bad, hit.sum())
    return MXArray(mx.fmt, mx.shape, mx.axis, el, mx.scales, mx.modes)


@pytest.mark.parametrize("fa, fb, rows, cols", [
    ("mxint8", "mxfp8_e4m3", 2, 2),
    ("mxfp8_e4m3", "mxfp8_e5m2", 1, 2),
    ("mxfp8_e5m2", "mxfp8_e4m3", 2, 1),
])
def test_fp8_weights(fa, fb, rows, cols):
    """FP8 weights (19 and 33 serial bits), NaN/Inf element codes on both sides and NaN
    scales, a narrow saturating RNE accumulator."""
    rng = np.random.default_rng(20)
    a = random_operand(rng, fa, (2, 64), 1, nan_p=0.1)
    b = random_operand(rng, fb, (64, 2), 0)
    b = with_nonfinite(b, 0.01, 21)
    if golden.formats.get(fa).element.nonfinite_mask.any():
        a = with_nonfinite(a, 0.01, 22)
    acc = fixed(24, 8, "saturate", "rne")
    val = gemm(a, b, acc)
    assert np.isnan(val).any() and not np.isnan(val).all()
    check_gemm(a, b, rows, cols, acc, seed=3, p_stall=0.3, p_idle=0.2, pe="bitserial")


@pytest.mark.slow
def test_weight_extremes():
    """Every weight at its format's most negative or most positive integer (INT8 code
    -128 included, the serial sign bit alone), against extreme activations, saturating
    and wrapping."""
    for fb in ("mxint8", "mxfp4", "mxfp6_e3m2"):
        e = golden.formats.get(fb).element
        ints = np.where(e.nonfinite_mask, 0, e.int_table)
        lo, hi = int(np.argmin(ints)), int(np.argmax(ints))
        rng = np.random.default_rng(23)
        a = quantize(np.where(rng.random((3, 64)) < 0.5, -1e3, 1e3), "mxint8", axis=1)
        a.elements[:, :32] = 0x80                    # INT8 -128 (-2.0) on the first block
        b = quantize(np.ones((64, 2)), fb, axis=0)
        b.elements[:] = np.where(rng.random((64, 2)) < 0.7, lo, hi)
        b.scales[:] = 140
        for ov in ("saturate", "wrap"):
            acc = fixed(20, 0, ov, "floor")
            _, raw = gemm(a, b, acc, return_raw=True)
            if ov == "saturate":
                assert {int(v) for v in raw.ravel()} & {-(1 << 19), (1 << 19) - 1}
            check_gemm(a, b, 3, 2, acc, seed=4, pe="bitserial")


def test_zero_blocks_and_nan_scales():
    rng = np.random.default_rng(24)
    a = random_operand(rng, "mxfp4", (3, 96), 1, nan_p=0.3, zero_block_p=0.3)
    b = random_operand(rng, "mxint8", (96, 3), 0, nan_p=0.1, zero_block_p=0.4)
    acc = fixed(32, 16)
    val = gemm(a, b, acc)
    assert np.isnan(val).any() and not np.isnan(val).all()
    check_gemm(a, b, 3, 3, acc, seed=5, p_stall=0.5, pe="bitserial")


def test_rounding_right_shift():
    """Block dots below the accumulator grid: floor and RNE as golden."""
    rng = np.random.default_rng(25)
    a = quantize(rng.standard_normal((2, 32)) * 2.0**-20, "mxfp8_e4m3", axis=1)
    b = quantize(rng.standard_normal((32, 2)), "mxint8", axis=0)
    for r in ("floor", "rne"):
        check_gemm(a, b, 2, 2, fixed(24, 22, "saturate", r), seed=6, pe="bitserial")


# ---- timing: one transfer per p cycles, latency ------------------------------------------

@pytest.mark.parametrize("fb, pipeline", [("mxint8", DEFAULT_PIPELINE), ("mxfp4", 0)])
def test_throughput_and_latency(fb, pipeline):
    """Operands always valid, results always taken: the array takes a transfer every
    ``step_cycles`` cycles exactly (ready low ``p - 1`` cycles in between), tiles back to
    back, and each tile's first result row is valid ``latency`` cycles after its last
    transfer."""
    rng = np.random.default_rng(26)
    a = random_operand(rng, "mxfp8_e4m3", (4, 64), 1)
    b = random_operand(rng, fb, (64, 6), 0)
    R, C = 2, 3
    dut = SystolicArray(R, C, a.fmt, b.fmt, acc=ACC, pe="bitserial", pipeline=pipeline)
    p = SERIAL[fb]
    assert dut.step_cycles == p and dut.pe_latency == 1 + pipeline
    assert dut.latency == R + C + 1 + pipeline + p      # p - 1, + 1 for the output stage
    tiles = tile_order(4, 6, R, C)
    beats = [x for m0, n0 in tiles for x in array_beats(a, b, R, C, m0, n0)]
    takes, firsts = [], []

    async def tb(ctx):
        taken, rows_out, cycle = 0, 0, 0
        ctx.set(dut.o.ready, 1)
        while rows_out < len(tiles) * R:
            assert cycle < 2 * p * len(beats) + 100, "timeout"
            if taken < len(beats):
                ctx.set(dut.i.payload, beats[taken])
            ctx.set(dut.i.valid, taken < len(beats))
            _, _, i_ready, o_valid = await ctx.tick().sample(dut.i.ready, dut.o.valid)
            if taken < len(beats) and i_ready:
                takes.append(cycle)
                taken += 1
            if o_valid:
                if rows_out % R == 0:
                    firsts.append(cycle)
                rows_out += 1
            cycle += 1

    run(dut, tb)
    assert np.all(np.diff(takes) == p)
    lasts = takes[len(beats) // len(tiles) - 1::len(beats) // len(tiles)]
    assert [f - t for f, t in zip(firsts, lasts)] == [dut.latency] * len(tiles)


# ---- the PE alone -------------------------------------------------------------------------

def run_pe(a, b, nblks, acc, pipeline, gaps):
    """Feed tiles (``nblks[t]`` blocks each) through one BitSerialMXMacPE, weights as
    golden's serial bits (MSB first) of their ``int_table`` integers, with idle cycles
    anywhere (``gaps``: a seed or a drawn pattern); returns [(result, special)] per tile,
    read ``latency`` cycles after the final bit of each tile's last step."""
    fa, fb = array_block_format(a.fmt), array_block_format(b.fmt)
    k = fa.block_size
    dut = BitSerialMXMacPE(fa, fb, acc, pipeline=pipeline)
    p = dut.serial_bits
    assert dut.latency == 1 + pipeline
    rng = gap_source(gaps)
    ints, lsb, bad = golden.arith.element_ints(b)    # MXSF: by mode, on the modes' grid
    assert lsb == operand_element(fb).lsb_exp
    seq, kk = [], 0     # per cycle: None (idle) or (kk, bit, first, final, block_end, last)
    for nb in nblks:
        for i in range(nb * k):
            w = int(ints[kk, 0])
            for n, bit in enumerate(golden_serial_bits(w, p)):
                while rng.random() < 0.1:
                    seq.append(None)
                seq.append((kk, bit, n == 0, n == p - 1, i % k == k - 1, i == nb * k - 1))
            kk += 1

    def drive(ctx, n, x):
        if x is None:
            ctx.set(dut.valid, 0)
            ctx.set(dut.b_bit, n & 1)                        # ignored
            return False
        kk, bit, first, final, end, last = x
        ctx.set(dut.a, int(a.elements[0, kk]))
        ctx.set(dut.a_scale, int(a.scales[0, kk // k]))
        ctx.set(dut.b_scale, int(b.scales[kk // k, 0]))
        ctx.set(dut.b_nonfinite, int(bad[kk, 0]))
        if a.modes is not None:
            ctx.set(dut.a_mode, int(a.modes[0, kk // k]))
        ctx.set(dut.b_bit, bit)
        for port, v in ((dut.valid, 1), (dut.first, first), (dut.final, final),
                        (dut.block_end, end), (dut.last, last)):
            ctx.set(port, int(v))
        return last and final

    return pe_results(dut, seq, drive)


@budget(20, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fa=st.sampled_from(FORMATS), fb=st.sampled_from(FAST_B + ["mxfp8_e4m3"]),
       nblks=st.lists(st.integers(1, 2), min_size=1, max_size=3), acc=acc_strategy(),
       pipeline=st.integers(0, PE_PIPELINE_MAX), gaps=waits(400), nan=st.booleans(),
       zero=st.booleans())
def test_pe_matches_golden(data, fa, fb, nblks, acc, pipeline, gaps, nan, zero):
    """Back-to-back tiles of 1..2 blocks through one bit-serial PE equal golden GEMMs of
    1x1 tiles."""
    a, b = data.draw(mx_operands(fa, fb, 1, 1, sum(nblks), nan=nan, zero=zero))
    check_pe_tiles(a, b, nblks, acc, run_pe(a, b, nblks, acc, pipeline, gaps))


# ---- the GEMM engine on a bit-serial array ----------------------------------------------

def test_engine_with_bitserial_array():
    """GemmEngine relies on the stream handshake only: golden results, one array
    transfer per K step (``busy``), and the array waits ``p - 1`` cycles per step."""
    rng = np.random.default_rng(27)
    a = random_operand(rng, "mxfp6_e2m3", (3, 64), 1, nan_p=0.1)
    b = random_operand(rng, "mxfp4", (64, 5), 0)
    acc = fixed(28, 10, "wrap", "rne")
    got, tel = run_engine(a, b, 2, 3, acc, seed=8, p_stall=0.3, pe="bitserial")
    check_engine(a, b, got, acc)
    steps = len(tile_order(3, 5, 2, 3)) * 64
    assert tel["busy"] == steps
    assert tel["stalled"] >= (SERIAL["mxfp4"] - 1) * (steps - 1)


# ---- constructor --------------------------------------------------------------------------

def test_init():
    dut = SystolicArray(2, 3, "mxfp4", "mxint8", acc=ACC, pe="bitserial")
    assert (dut.pe_type, dut.step_cycles, dut.pe_latency) == ("bitserial", 8,
                                                               1 + DEFAULT_PIPELINE)
    assert dut.latency == 5 + 1 + DEFAULT_PIPELINE + 8     # p - 1, + 1: output stage
    assert set(dut.in_layout.members) == {"a", "a_scale", "b", "b_scale", "last"}
    dut = SystolicArray(2, 3, "mxint8", "mxfp4", acc=ACC, pe=BitSerialMXMacPE)
    assert (dut.pe_type, dut.step_cycles, dut.pe_latency) == ("bitserial", 5, 1)
    dut = SystolicArray(2, 2, "mxint8", "mxfp8_e5m2", acc=ACC, pipeline=1,
                        pe=functools.partial(BitSerialMXMacPE, pipeline=3))
    assert (dut.pe_type, dut.step_cycles, dut.pe_latency) == ("bitserial", 33, 4)
    dut = SystolicArray(2, 2, "mxint8", "mxint8", acc=ACC, pe="bitparallel")
    # row-shared accumulators (the default here): 3 cycles more (row_extra_stages), and
    # one register before INT8 x INT8's DSP product (pipeline 4, split_product)
    assert (dut.pe_type, dut.step_cycles, dut.pe_latency) == ("bitparallel", 1,
                                                               1 + DEFAULT_PIPELINE + 3 + 1)
    dut = SystolicArray(2, 2, "mxint8", "mxint8", acc=ACC, pe="bitparallel",
                        shared_acc=False)
    assert dut.pe_latency == 1 + DEFAULT_PIPELINE
    assert SystolicArray(2, 2, "mxint8", "mxint8", acc=ACC,
                         pe=lambda fa, fb, acc: None).pe_type == "custom"
    pe = BitSerialMXMacPE(array_block_format("mxfp4"), array_block_format("mxint8"), ACC,
                          pipeline=2)
    assert (pe.serial_bits, pe.latency, pe.pipeline) == (8, 3, 2)


# an element whose fixed-point form is wider than SERIAL_BITS_MAX: FP9 E6M2
_WIDE = golden.formats.BlockFormat(
    name="mxfp9_e6m2", candidates=(golden.formats.fp_format("fp9_e6m2", 6, 2),),
    scale=golden.formats.get("e8m0"), block=32)


@pytest.mark.parametrize("kw, exc, msg", [
    ({"pe": "serial"}, ValueError,
     "pe must be one of bitparallel, bitserial or a PE factory, not 'serial'"),
    ({"pe": "bitserial", "acc": golden.arith.FP32}, ValueError,
     "the bit-serial PE implements fixed-point accumulation only, not 'fp32'"),
    ({"pe": BitSerialMXMacPE, "acc": golden.arith.FP32}, ValueError,
     "the bit-serial PE implements fixed-point accumulation only, not 'fp32'"),
    ({"pe": "bitserial", "dataflow": "weight_stationary"}, ValueError,
     "pe factories apply to the output-stationary dataflow; the weight-stationary array "
     "has its own PE"),
    ({"pe": "bitserial", "fmt_b": _WIDE}, ValueError,
     f"fmt_b: fp9_e6m2 elements need 66 serial bits as fixed-point integers; the "
     f"bit-serial PE takes at most {SERIAL_BITS_MAX}"),
    ({"pe": "bitserial", "pipeline": 5}, ValueError, "pipeline must be in [0, 4], not 5"),
])
def test_init_wrong(kw, exc, msg):
    assert_raises(SystolicArray, dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxint8", acc=ACC),
                  kw, exc, msg)


@pytest.mark.parametrize("kw, exc, msg", [
    ({"pipeline": 5}, ValueError, "pipeline must be in [0, 4], not 5"),
    ({"pipeline": "1"}, TypeError, "pipeline must be an integer, not '1'"),
    ({"acc": golden.arith.FP32}, ValueError,
     "the bit-serial PE implements fixed-point accumulation only, not 'fp32'"),
    ({"fmt_b": _WIDE}, ValueError,
     f"fmt_b: fp9_e6m2 elements need 66 serial bits as fixed-point integers; the "
     f"bit-serial PE takes at most {SERIAL_BITS_MAX}"),
])
def test_pe_init_wrong(kw, exc, msg):
    assert_raises(BitSerialMXMacPE, dict(fmt_a=array_block_format("mxfp4"),
                                         fmt_b=array_block_format("mxint8"), acc=ACC),
                  kw, exc, msg)
