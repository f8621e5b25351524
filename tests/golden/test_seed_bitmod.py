"""BitMoD FP4/FP3 and per-group INT baselines: tables, brute-force type choice, zero points."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from support.golden import float_arrays
from support.hyp import budget

from mxhw import golden
from mxhw.golden import formats as F

# the published value sets (BitMoD paper; quant_weight.py lists), by candidate
PUB = {
    "fp4": {"er_pos": 5, "er_neg": -5, "ea_pos": 8, "ea_neg": -8},
    "fp3": {"er_pos": 3, "er_neg": -3, "ea_pos": 6, "ea_neg": -6},
}
BASE = {"fp4": [0, .5, 1, 1.5, 2, 3, 4, 6], "fp3": [0, 1, 2, 4]}


@pytest.mark.parametrize("fam", ["fp4", "fp3"])
@pytest.mark.parametrize("cand", ["er_pos", "er_neg", "ea_pos", "ea_neg"])
def test_tables(fam, cand):
    f = F.get(f"bitmod_{fam}_{cand}")
    mag = BASE[fam]
    expect = mag + [PUB[fam][cand]] + [-m for m in mag[1:]]
    assert f.table.tolist() == expect
    assert sorted(set(f.finite_values.tolist())) == sorted(
        set(mag + [-m for m in mag] + [PUB[fam][cand]]))


def test_candidate_order_and_bits():
    f4, f3 = F.get("bitmod_fp4"), F.get("bitmod_fp3")
    assert [c.name for c in f4.candidates] == [f"bitmod_fp4_{s}" for s in
                                               ("er_pos", "er_neg", "ea_pos", "ea_neg")]
    assert f4.block == 128 and f4.scale.name == "fp16"
    assert f4.bits_per_value == 4 + 18 / 128 and f3.bits_per_value == 3 + 18 / 128


def _brute(group, fam):
    """Independent: FP16 scale via numpy's float16 cast, exact nearest grid value."""
    fmt = F.get(f"bitmod_{fam}")
    best = None
    amax = max(abs(v) for v in group)
    for i, c in enumerate(fmt.candidates):
        grid = sorted(set(BASE[fam] + [-m for m in BASE[fam]] + [PUB[fam][c.name[11:]]]))
        s = Fraction(float(np.float16(amax / max(abs(g) for g in grid))))
        err = sum(min((Fraction(float(v)) - s * Fraction(g)) ** 2 for g in grid)
                  for v in group)
        if best is None or err < best[1]:
            best = (i, err)
    return best


@pytest.mark.parametrize("fam", ["fp4", "fp3"])
@budget(25)
@given(x=float_arrays((1, 128), hi_abs=8.0, group=128), s=st.floats(0.01, 10),
       at=st.integers(0, 127), outlier=st.sampled_from([4.0, -4.0]))
def test_type_choice_is_exact_min(fam, x, s, at, outlier):
    x = x * s
    x[0, at] *= outlier                                 # a skewed outlier
    q = golden.quantize(x, f"bitmod_{fam}")
    i, err = _brute(x[0].tolist(), fam)
    assert q.modes[0, 0] == i
    d = q.dequantize()[0]
    assert sum((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(x[0], d)) == err


def test_each_candidate_wins_somewhere():
    base = np.linspace(-1, 1, 128)
    for i, extra in enumerate([5 / 6, -5 / 6, 1.0, -1.0]):
        # a group whose max is positive/negative and that sits on the extra value
        x = base * 0.05
        x[:20] = extra
        x[20] = 1.0 if extra > 0 else -1.0
        q = golden.quantize(x[None], "bitmod_fp4")
        assert q.modes[0, 0] == i, (i, q.modes)


# FP16 scale: amax/6..8 must stay in FP16's normal range [2**-14, 65504] for the
# choice to move with a power-of-two scaling; the strategy keeps |x| within [2**-8, 2**8]
# and k within [-4, 4].
@pytest.mark.parametrize("fam", ["fp4", "fp3"])
@budget(30)
@given(x=float_arrays((2, 128), lo_abs=2.0**-20, hi_abs=1.0, group=128),
       e=st.lists(st.floats(-4, 4), min_size=2, max_size=2), k=st.integers(-4, 4))
def test_type_choice_pow2_invariant(fam, x, e, k):
    # each group's largest magnitude is 2**e, e in [-4, 4] (a float)
    x = x / np.abs(x).max(axis=1, keepdims=True) * np.exp2(np.array(e))[:, None]
    a = golden.quantize(x, f"bitmod_{fam}")
    b = golden.quantize(np.ldexp(x, k), f"bitmod_{fam}")
    assert (a.modes == b.modes).all() and (a.elements == b.elements).all()
    assert np.array_equal(np.ldexp(a.scale_values(), k), b.scale_values())


def test_int_group_tables_and_rounding():
    assert F.get("int4_g128").element.finite_values.tolist()[1:] == list(range(-7, 8))
    assert F.get("sint3").encode([-5.0, 3.4, 2.5, -2.5]).tolist() == [5, 3, 2, 6]
    assert F.get("int3_g128").bits_per_value == 3 + 16 / 128
    assert F.get("int4_g128_asym").bits_per_value == 4 + 20 / 128
    for n in range(2, 9):
        assert f"int{n}_g128" in F.names() and f"int{n}_g128_asym" in F.names()


@budget(30)
@given(x=float_arrays((3, 64), hi_abs=3.0), offset=st.floats(-2, 2), n=st.integers(2, 8))
def test_int_group_asym_matches_reference(x, offset, n):
    x = x + offset
    # every group spans a range (min(v, 0) < max(v, 0)): a constant group has no scale
    g = x.reshape(3, 2, 32)
    assume((np.maximum(g.max(-1), 0) > np.minimum(g.min(-1), 0)).all())
    fmt = golden.pergroup.int_group(n, 32, symmetric=False)
    q = golden.quantize(x, fmt)
    qmax = 2**n - 1
    for r in range(3):
        for g in range(2):
            v = x[r, 32 * g:32 * g + 32]
            lo, hi = min(v.min(), 0), max(v.max(), 0)
            s = float(np.float16((hi - lo) / qmax))
            z = min(max(round(-lo / s), 0), qmax)  # Python round: RNE
            assert q.scale_values()[r, g] == s and q.zeros[r, g] == z
            codes = [min(max(round(u / s + z), 0), qmax) for u in v]
            assert q.elements[r, 32 * g:32 * g + 32].tolist() == codes
            assert np.array_equal(q.dequantize()[r, 32 * g:32 * g + 32],
                                  s * (np.array(codes) - z))


def test_int_group_sym_matches_reference():
    x = np.random.default_rng(5).standard_normal((2, 256))
    q = golden.quantize(x, "int4_g128")
    for r in range(2):
        for g in range(2):
            v = x[r, 128 * g:128 * g + 128]
            s = float(np.float16(np.abs(v).max() / 7))
            assert q.scale_values()[r, g] == s
            ref = [min(max(round(u / s), -7), 7) for u in v]
            assert np.array_equal(q.dequantize()[r, 128 * g:128 * g + 128], s * np.array(ref))


def test_torch_input():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 128, dtype=torch.float16)
    for n in ("bitmod_fp4", "int4_g128_asym"):
        a, b = golden.quantize(x, n), golden.quantize(x.float().numpy(), n)
        assert np.array_equal(a.dequantize(), b.dequantize())


def test_bad_params():
    with pytest.raises(ValueError, match=r"^bitmod: family must be 'fp4' or 'fp3', not 'fp5'$"):
        golden.bitmod.bitmod("fp5")
    with pytest.raises(ValueError, match=r"^int_group: bits must be in \[2, 8\], not 9$"):
        golden.pergroup.int_group(9)
    with pytest.raises(ValueError, match=r"^int_group: group must be >= 1, not 0$"):
        golden.pergroup.int_group(4, 0)
    with pytest.raises(TypeError, match=r"^int_group: group must be an integer, not True$"):
        golden.pergroup.int_group(4, True)
    with pytest.raises(ValueError, match=r"^bitmod: group must be >= 1, not 0$"):
        golden.bitmod.bitmod("fp4", 0)
