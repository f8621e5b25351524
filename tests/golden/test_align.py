"""golden.align against an independent Fraction reference."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st
from support.hyp import budget

from mxhw.golden import formats
from mxhw.golden.align import align_block, align_nan

FMTS = ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1"]


def reference(codes, fmt, out_width, rounding):
    """Fraction-based: exact values from the decode table, floor(log2) of the block max
    (of the normal part), rounding by Fraction arithmetic."""
    f = formats.get(fmt)
    vals = [f.table[c] for c in codes]
    fin = [v for v in vals if math.isfinite(v) and v != 0]
    emin = 1 - f.bias
    ref = max([max(math.frexp(abs(v))[1] - 1, emin) for v in fin], default=emin)
    F = out_width - 2
    lsb = Fraction(2) ** (ref - F)
    out = []
    for v in vals:
        if not math.isfinite(v):
            out.append(0)
            continue
        x = abs(Fraction(v)) / lsb
        q = math.floor(x)
        if rounding == "rne" and (x - q > Fraction(1, 2) or (x - q == Fraction(1, 2) and q % 2)):
            q += 1
        q = min(q, 2 ** (F + 1) - 1)
        out.append(-q if v < 0 else q)
    return out, ref


@budget(300)
@given(st.sampled_from(FMTS), st.integers(2, 20), st.sampled_from(["truncate", "rne"]),
       st.data())
def test_align_vs_fraction(fmt, out_width, rounding, data):
    f = formats.get(fmt)
    codes = data.draw(st.lists(st.integers(0, f.n_codes - 1), min_size=1, max_size=40))
    ints, e = align_block(np.array(codes), fmt, out_width, rounding)
    ref, ref_e = reference(codes, fmt, out_width, rounding)
    assert int(e) == ref_e
    assert [int(i) for i in ints] == ref
    assert all(-(2 ** (out_width - 1)) < int(i) < 2 ** (out_width - 1) for i in ints)


@pytest.mark.parametrize("fmt", FMTS)
def test_exact_when_wide(fmt):
    """With enough fractional bits the alignment is lossless: q * lsb == value."""
    f = formats.get(fmt)
    codes = np.arange(f.n_codes)
    fin = ~f.nonfinite_mask
    w = f.man_bits + ((1 << f.exp_bits) - 1) + 3
    ints, e = align_block(codes[None, :], fmt, w, "truncate")
    got = np.ldexp(ints[0].astype(float), int(e[0]) - (w - 2))
    assert np.array_equal(got[fin], f.table[fin] + 0.0)


def test_rne_ties_and_saturation():
    # fp4: 6 = 1.5 * 2^2 is the reference; out_width 2 (F=0): 6 -> 1.5 LSB... q = 1.5 -> 2
    # -> saturates to 1; 0.5 -> 0.125 -> 0; 3 -> 0.75 -> 1
    f = formats.get("fp4_e2m1")
    enc = {float(f.table[c]): c for c in range(f.n_codes) if f.table[c] >= 0}
    ints, e = align_block([enc[6.0], enc[3.0], enc[0.5], enc[2.0] | 8], "fp4_e2m1", 2, "rne")
    assert int(e) == 2 and list(ints) == [1, 1, 0, -0]
    # F = 1: 6 -> 3, 3 -> 1.5 -> 2 (tie to even), 1 -> 0.5 -> 0 (tie to even), -2 -> -1
    ints, _ = align_block([enc[6.0], enc[3.0], enc[1.0], enc[2.0] | 8], "fp4_e2m1", 3, "rne")
    assert list(ints) == [3, 2, 0, -1]
    ints, _ = align_block([enc[6.0], enc[3.0], enc[1.0], enc[3.0] | 8], "fp4_e2m1", 3,
                          "truncate")
    assert list(ints) == [3, 1, 0, -1]


def test_all_zero_and_nan():
    ints, e = align_block(np.zeros((2, 32), dtype=int), "mxfp8_e4m3", 8)
    assert (ints == 0).all() and list(e) == [-6, -6]
    codes = np.zeros((2, 32), dtype=int)
    codes[0, 3] = 0x7F  # E4M3 NaN
    codes[0, 4] = 0x08  # 2^-6 (min normal)
    ints, e = align_block(codes, "fp8_e4m3", 8)
    assert list(e) == [-6, -6] and ints[0, 3] == 0 and ints[0, 4] == 64
    assert list(align_nan(codes, "fp8_e4m3", [0, 0xFF])) == [True, True]
    assert list(align_nan(codes, "fp8_e4m3")) == [True, False]


@pytest.mark.parametrize("args,exc,msg", [
    (("int8", 8), ValueError, "fmt must be a floating-point element format, not 'int8' "
                               "(kind 'int')"),
    (("fp8_e4m3", 1), ValueError, "out_width must be >= 2, not 1"),
    (("fp8_e4m3", 8, "rtz"), ValueError,
     "rounding must be one of 'truncate', 'rne', not 'rtz'"),
    (("fp8_e4m3", True), TypeError, "out_width must be an integer, not True"),
    ((3, 8), TypeError, "fmt must be a format name or descriptor, not 3"),
])
def test_bad_args(args, exc, msg):
    with pytest.raises(exc) as info:
        align_block([0], *args)
    assert str(info.value) == msg
