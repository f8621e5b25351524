"""MXSF mode switch. Decoding side: MXSFDecoder, every code in both modes against golden's
mxsf candidates (value tables). Quantising side: Requantizer("mxsf") (mode choice, scale and
codes) against golden.quantize, from fixed-point and FP32 input, exact mode ties included.
Random back-pressure throughout; constructor errors."""

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.dequant import MXSFDecoder, Requantizer
from mxhw.golden import formats
from support.hyp import budget
from support.pe import (F32_NONFINITE, f32, f32_blocks, fixed_blocks, requant_input,
                        requant_run, run_stream, sized, waits)


def decode_blocks(dut, blocks, idle=0, stall=0):
    layout = dut.i.payload.shape()

    def pack(codes, mode, scale):
        v = 0
        for j, c in enumerate(codes):
            v |= int(c) << (8 * j)
        return layout.from_bits(v | (mode << (8 * dut.k)) | (scale << (8 * dut.k + 1)))

    return run_stream(dut, [pack(*b) for b in blocks], len(blocks), idle, stall)


def value(u, sig_bits):
    if u.is_nan:
        return math.nan
    return (-1.0) ** u.sign * math.ldexp(u.significand, u.exponent - (sig_bits - 1))


def check(dut, blocks, idle=0, stall=0):
    fmt = formats.get("mxsf")
    sig_bits = dut.o.payload.elements[0].significand.shape().width
    for (codes, mode, scale), p in zip(blocks, decode_blocks(dut, blocks, idle, stall)):
        assert p.scale == scale
        table = fmt.candidates[mode].table
        for j, c in enumerate(codes):
            u = p.elements[j]
            want, have = table[c], value(u, sig_bits)
            if math.isnan(want):
                assert math.isnan(have), (mode, c)
            else:
                assert have == want and math.copysign(1, have) == math.copysign(1, want), \
                    (mode, c, have, want)
                assert u.is_zero == (want == 0), (mode, c)


def test_exhaustive_both_modes():
    dut = MXSFDecoder(k=32)
    blocks = [(list(range(b * 32, b * 32 + 32)), mode, (b * 37 + mode) % 256)
              for mode in (0, 1) for b in range(8)]
    check(dut, blocks, 1, 1)


@budget(10)
@given(st.integers(1, 8), st.data(), waits(), waits())
def test_random_blocks(k, data, idle, stall):
    dut = MXSFDecoder(k=k)
    blk = st.tuples(st.lists(st.integers(0, 255), min_size=k, max_size=k),
                    st.integers(0, 1), st.integers(0, 255))
    check(dut, data.draw(st.lists(blk, min_size=1, max_size=20)), idle, stall)


def test_init():
    d = MXSFDecoder()
    assert d.k == 32 and d.latency == 1


@pytest.mark.parametrize("k, exc, msg", [(0, ValueError, "k must be >= 1, not 0"),
                                         (-1, ValueError, "k must be >= 1, not -1"),
                                         (2.0, TypeError, "k must be an integer, not 2.0"),
                                         (True, TypeError, "k must be an integer, not True")])
def test_init_wrong_k(k, exc, msg):
    with pytest.raises(exc) as info:
        MXSFDecoder(k=k)
    assert str(info.value) == msg


# ---- quantising side: Requantizer("mxsf") picks the mode per block as golden does ---------

MXSF = formats.get("mxsf")


def check_encode(dut, blocks, idle=0, stall=0):
    """Run blocks (fixed-point integers or float32 bit patterns) through the quantiser and
    compare ``(scale, mode, codes)`` per block with golden; returns golden's blocks."""
    q = golden.quantize(requant_input(dut, blocks), dut.fmt)
    got = [(p.scale, p.mode, [int(c) for c in p.elements])
           for p in requant_run(dut, blocks, idle, stall)]
    assert len(got) == len(blocks)
    for b, (scale, mode, codes) in enumerate(got):
        want = (int(q.scales[b, 0]), int(q.modes[b, 0]), [int(c) for c in q.elements[b]])
        assert (scale, mode, codes) == want, (b, blocks[b])
    return q


def mode_errors(x):
    """Exact squared error of each mode alone per block (golden with one candidate)."""
    out = []
    for c in MXSF.candidates:
        y = golden.quantize(x, dataclasses.replace(MXSF, candidates=(c,),
                                                   block=x.shape[-1])).dequantize()
        out.append([sum((Fraction(float(a)) - Fraction(float(b))) ** 2
                        for a, b in zip(xr, yr)) for xr, yr in zip(x, y)])
    return out


@budget(25)
@given(st.integers(2, 30), st.one_of(st.integers(-8, 60), st.integers(115, 160)),
       st.integers(2, 8), st.data(), waits(), waits())
def test_encode_fixed_vs_golden(in_width, in_frac, pipeline, data, idle, stall):
    """Random blocks; in_frac >= 115 reaches the scale's clamp at -127 (one or both modes)."""
    k = 4
    dut = Requantizer(sized("mxsf", k), in_width=in_width, in_frac=in_frac, pipeline=pipeline)
    blocks = data.draw(st.lists(fixed_blocks(k, in_width), min_size=1, max_size=24))
    check_encode(dut, blocks, idle, stall)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # sNaN in golden
@budget(25)
@given(st.integers(2, 8), st.data(), waits(), waits())
def test_encode_fp32_vs_golden(pipeline, data, idle, stall):
    k = 4
    dut = Requantizer(sized("mxsf", k), in_kind="fp32", pipeline=pipeline)
    blocks = data.draw(st.lists(f32_blocks(k), min_size=1, max_size=24))
    check_encode(dut, blocks, idle, stall)


def tie_block(signs, perm, fill):
    """A block (relative to its maximum 1) whose two modes have equal, non-zero squared
    errors: ``a = 2**-8`` is exact in S and off by ``2**-8`` in W (a tie to 0); ``b =
    2**-4 + 2**-7`` is exact in W and off by ``2**-7`` in S (a tie to even); four a's and
    one b give ``4 * 2**-16 == 2**-14`` in both. ``fill``: values exact in both modes."""
    vals = [1.0] + [2.0**-8] * 4 + [2.0**-4 + 2.0**-7] + list(fill)
    vals = [v * s for v, s in zip(vals, signs)]
    return [vals[i] for i in perm]


#: Just above half of mode S's smallest step (2**-8 next to a maximum of 1) by one float32
#: ulp: S rounds it up, W to 0, and S's error is smaller by 2**-39 only.
NEAR = 2.0**-9 + 2.0**-32


@budget(10)
@given(st.integers(0, 40), st.booleans(), st.data(), waits(), waits())
def test_encode_mode_ties_go_to_w(shift, fp32, data, idle, stall):
    """Blocks whose W and S squared errors are exactly equal (and non-zero): golden and the
    hardware choose mode W; exact blocks (both errors zero) too; and the same tie blocks
    with one element at NEAR, where S is better by a hair (2**-39 of a maximum of 1):
    mode S, which needs the error comparison exact to the last bit of the input."""
    k = 8
    fill = st.lists(st.sampled_from([0.0, 0.5, 0.75, 1.0, 0.25, 0.125]), min_size=2,
                    max_size=2)
    blocks = []
    for _ in range(data.draw(st.integers(1, 4))):
        signs = data.draw(st.lists(st.sampled_from([1, -1]), min_size=k, max_size=k))
        perm = data.draw(st.permutations(range(k)))
        f = data.draw(fill)
        blocks.append(tie_block(signs, perm, f))
        blocks.append([v * s for v, s in zip(f * 4, signs)])  # error 0 in both modes
        blocks.append(tie_block(signs, perm, [NEAR, f[1]]))
    x = np.ldexp(np.array(blocks), -shift)
    ew, es = mode_errors(x)
    # the blocks really are ties, exact blocks and near ties
    assert ew[0::3] == es[0::3] and all(e > 0 for e in ew[0::3])
    assert ew[1::3] == es[1::3] == [0] * len(ew[1::3])
    assert all(0 < w - s < 1e-6 * w for w, s in zip(ew[2::3], es[2::3]))
    if fp32:
        dut = Requantizer(sized("mxsf", k), in_kind="fp32", pipeline=2)
        ins = x.astype(np.float32).view(np.uint32).tolist()
    else:
        dut = Requantizer(sized("mxsf", k), in_width=36, in_frac=32 + shift, pipeline=3)
        ins = np.ldexp(x, 32 + shift).astype(np.int64).tolist()
    q = check_encode(dut, ins, idle, stall)
    assert (q.modes[0::3] == 0).all() and (q.modes[1::3] == 0).all()
    assert (q.modes[2::3] == 1).all()


@pytest.mark.slow
@pytest.mark.parametrize("in_kind", ["fixed", "fp32"])
def test_encode_k32_all_codes(in_kind):
    """k = 32: blocks with a maximum at each mode's 2**emax and every value and midpoint of
    both modes (RNE ties), negative ones too; both modes get chosen."""
    w, s = MXSF.candidates
    frac = 8
    blocks = []
    rng = np.random.default_rng(7)
    for top, elem in ((4.0, w), (16.0, s), (7.0, w), (28.0, s)):
        vals = np.unique(np.abs(elem.finite_values))
        mids = (vals[:-1] + vals[1:]) / 2
        cand = rng.permutation(np.concatenate([vals, mids, -vals, -mids]))
        scale = top / 2.0**elem.emax
        for i in range(0, len(cand), 31):
            chunk = list(cand[i:i + 31] * scale) + [0.0] * (31 - len(cand[i:i + 31]))
            blocks.append([top] + chunk)
    # one large value, small ones: mode S's range wins
    for t in range(4):
        small = rng.choice([0.25, 0.3125, 0.375, -0.25, -0.5, 0.0], size=31) * 2.0**-t
        blocks.append([112.0 * 2.0**-t] + list(small))
    blocks.append([0.0] * 32)
    x = np.array(blocks)
    if in_kind == "fp32":
        dut = Requantizer("mxsf", in_kind="fp32")
        ins = x.astype(np.float32).view(np.uint32).tolist()
    else:
        dut = Requantizer("mxsf", in_width=20, in_frac=frac)
        ins = np.ldexp(x, frac).astype(np.int64).tolist()
    q = check_encode(dut, ins, 9, 9)
    assert set(q.modes.ravel()) == {0, 1}


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # sNaN in golden
def test_encode_fp32_nan_inf():
    """NaN/Inf anywhere in a block: NaN scale, zero codes and mode W, as golden (which
    chooses the mode of an all-zero block), even where the finite elements favour S."""
    k = 4
    blocks = []
    for bad in F32_NONFINITE:
        for pos in range(k):
            # 112 and 0.3 (scaled): mode S would win for the finite elements
            blk = [f32(0, 133, 0x600000), f32(0, 125, 0x19999A), f32(0, 125, 0x19999A),
                   f32(1, 125, 0x19999A)]
            blk[pos] = bad
            blocks += [blk, [f32(0, 127, 0)] * k]
    dut = Requantizer(sized("mxsf", k), in_kind="fp32")
    q = check_encode(dut, blocks, 13, 13)
    assert (q.scales[0::2] == 0xFF).all() and (q.modes[0::2] == 0).all()
    finite = np.array(blocks[0::2], dtype=np.uint32).view(np.float32)
    finite = np.where(np.isfinite(finite), finite, 0)
    assert (golden.quantize(finite, sized("mxsf", k)).modes == 1).any()


def test_encode_connects_to_decoder():
    """The quantiser's output payload is the decoder's input payload."""
    enc, dec = Requantizer(sized("mxsf", 8), in_kind="fp32"), MXSFDecoder(k=8)
    assert enc.o.payload.shape() == dec.i.payload.shape()
    assert enc.latency == 8 and Requantizer("mxsf", pipeline=2).latency == 2  # default: deepest


@pytest.mark.parametrize("kwargs,msg", [
    ({"in_width": 53, "in_frac": -100},
     "in_frac -100 with in_width 53 gives scale exponents in [-127, 150], outside E8M0's "
     "[-127, 127] (or in_frac above 1000)"),
    ({"in_kind": "fp32", "in_frac": 3},
     "in_frac applies to in_kind 'fixed' only; leave it None for 'fp32', not 3"),
    ({"k": 0}, "k must be >= 1, not 0"),
    ({"pipeline": 1}, "pipeline must be in [2, 8], not 1"),
])
@pytest.mark.filterwarnings("ignore:k is deprecated")
def test_encode_init_wrong(kwargs, msg):
    with pytest.raises(ValueError) as info:
        Requantizer("mxsf", **kwargs)
    assert str(info.value) == msg
