"""ANT flint tables and the per-tensor selection (brute force with Fractions)."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from mxhw import golden
from mxhw.golden import formats as F


def test_flint4_tables():
    pub = [0, 1, 2, 3, 4, 6, 8, 16]  # x4, docs/FORMATS.md / BitMoD's ANT list
    f = F.get("flint4")
    assert sorted(set((f.finite_values * 4).tolist())) == sorted(set(pub + [-v for v in pub]))
    assert np.isnan(f.table[8]) and f.encode([-0.0]).tolist() == [0]
    u = F.get("flint4_u")
    assert (u.table * 8).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 24, 32, 64]
    assert (F.get("pot4").finite_values > 0).sum() == 7


def _brute(x, fmt):
    best = None
    amax = float(np.abs(x).max())
    for i, c in enumerate(fmt.candidates):
        grid = sorted({Fraction(float(v)) for v in c.table if np.isfinite(v)})
        if c.name == "sint4":
            grid = [g for g in grid if g >= -7]
        s = Fraction(float(np.float16(amax / float(max(abs(g) for g in grid)))))
        err = sum(min((Fraction(float(v)) - s * g) ** 2 for g in grid) for v in x)
        if best is None or err < best[1]:
            best = (i, err)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_select_is_exact_min(seed):
    rng = np.random.default_rng(seed)
    dist = [rng.standard_normal, lambda n: rng.laplace(size=n), lambda n: rng.standard_t(2, n),
            lambda n: rng.uniform(-1, 1, n), lambda n: 2.0 ** rng.integers(-5, 0, n),
            lambda n: rng.standard_normal(n) ** 3][seed]
    x = np.asarray(dist(64)).reshape(8, 8)
    q = golden.ant.select(x)
    i, err = _brute(x.reshape(-1), q.fmt)
    assert q.modes[0] == i
    d = q.dequantize()
    assert sum((Fraction(float(a)) - Fraction(float(b))) ** 2
               for a, b in zip(x.reshape(-1), d)) == err


def test_select_picks_pot_for_powers_of_two():
    x = np.array([1, -0.5, 0.25, 2.0 ** -5, 0, -1])
    assert golden.ant.select(x).modes[0] == 2


def test_bad_params():
    with pytest.raises(ValueError, match=r"^ant_format: bits must be one of 4, 8, not 6$"):
        golden.ant.select(np.ones(4), bits=6)
    with pytest.raises(TypeError, match=r"^ant_format: bits must be an integer, not True$"):
        golden.ant.ant_format(4, True)
    with pytest.raises(ValueError, match=r"^ant_format: n must be >= 1, not 0$"):
        golden.ant.ant_format(0, 8)
    for bad in (2, 13):
        with pytest.raises(ValueError, match=r"^flint_values: bits must be in \[3, 12\], not "):
            golden.ant.flint_values(bad)
    for bad in (4.0, True):
        with pytest.raises(TypeError, match=r"^flint_values: bits must be an integer, not "):
            golden.ant.flint_values(bad)


# ---- the flint generator and flint8 ------------------------------------------------------

def _flint_closed_form(B):
    """Independent statement of the flint value set with B value bits (ANT paper's
    first-one encoding, read off ANT's generator): exponent e < 0 carries B-1-|e| mantissa
    bits, e = 0 carries B-2, e > 0 carries B-2-e; plus zero and the top value 2**(B-1)."""
    vals = {Fraction(0), Fraction(2) ** (B - 1)}
    for e in range(-(B - 1), B - 1):
        m = B - 1 + e if e < 0 else (B - 2 if e == 0 else B - 2 - e)
        for j in range(2 ** m):
            vals.add(Fraction(2) ** e * (1 + Fraction(j, 2 ** m)))
    return sorted(vals)


def test_generator_reproduces_flint4():
    # the generator with 3 / 4 value bits gives the tables golden already had (from the
    # published lists) code for code
    f4, u4 = F.get("flint4"), F.get("flint4_u")
    assert list(golden.ant.flint_values(4)) == f4.table[:8].tolist()
    assert list(golden.ant.flint_values(4, signed=False)) == u4.table.tolist()
    pub = [0, 1, 2, 3, 4, 6, 8, 16]  # x4, docs/FORMATS.md
    assert [v * 4 for v in golden.ant.flint_values(4)] == pub


@pytest.mark.parametrize("bits", range(3, 13))
def test_generator_closed_form(bits):
    for signed in (True, False):
        B = bits - 1 if signed else bits
        v = golden.ant.flint_values(bits, signed)
        assert len(v) == 2 ** B
        assert [Fraction(x) for x in v] == _flint_closed_form(B)


def test_flint8_every_code():
    f = F.get("flint8")
    mags = _flint_closed_form(7)
    assert f.bits == 8 and f.kind == "table" and f.max_normal == 64 and f.min_subnormal == 2**-6
    for c in range(256):
        v = f.table[c]
        if c == 128:
            assert np.isnan(v)  # the -0 code is unused
        elif c < 128:
            assert Fraction(float(v)) == mags[c]
        else:
            assert Fraction(float(v)) == -mags[c - 128]
    u = F.get("flint8_u")
    umags = _flint_closed_form(8)
    assert u.bits == 8 and u.max_normal == 128
    assert [Fraction(float(v)) for v in u.table] == umags


@pytest.mark.parametrize("name", ["flint8", "flint8_u"])
def test_flint8_round_trip_and_saturation(name):
    f = F.get(name)
    codes = np.array([c for c in range(256) if np.isfinite(f.table[c])])
    assert np.array_equal(f.encode(f.decode(codes)), codes)
    top = int(np.flatnonzero(f.table == f.max_normal)[0])
    assert f.encode([f.max_normal * 1.5, np.inf]).tolist() == [top, top]
    if name == "flint8":
        bottom = int(np.flatnonzero(f.table == -f.max_normal)[0])
        assert f.encode([-1e9]).tolist() == [bottom]
    # every midpoint between neighbours goes to the even code (RNE), from an exact search
    vals = f.finite_values
    mids = (vals[:-1] + vals[1:]) / 2
    got = f.encode(mids)
    for m, g, lo, hi in zip(mids, got, vals[:-1], vals[1:]):
        c_lo = int(np.flatnonzero(f.table == lo)[0]) if lo != 0 else f.encode([0.0])[0]
        c_hi = int(np.flatnonzero(f.table == hi)[0]) if hi != 0 else f.encode([0.0])[0]
        assert g == (c_lo if c_lo % 2 == 0 else c_hi), m


def _brute_grid(c):
    grid = sorted({Fraction(float(v)) for v in c.table if np.isfinite(v)})
    if c.name.startswith("sint"):
        lim = 2 ** (c.bits - 1) - 1
        grid = [g for g in grid if g >= -lim]
    return grid


@pytest.mark.parametrize("seed", range(5))
def test_select8_is_exact_min(seed):
    rng = np.random.default_rng(seed)
    dist = [rng.standard_normal, lambda n: rng.standard_t(1, n), lambda n: rng.laplace(size=n),
            lambda n: 2.0 ** rng.integers(-6, 0, n) * rng.choice([-1, 1], n),
            lambda n: rng.standard_normal(n) ** 5][seed]
    x = np.asarray(dist(48))
    q = golden.ant.select(x, bits=8)
    assert [c.name for c in q.fmt.candidates] == ["sint8", "flint8"]
    amax = float(np.abs(x).max())
    errs = []
    for c in q.fmt.candidates:
        grid = _brute_grid(c)
        s = Fraction(float(np.float16(amax / float(max(abs(g) for g in grid)))))
        errs.append(sum(min((Fraction(float(v)) - s * g) ** 2 for g in grid) for v in x))
    want = 0 if errs[0] <= errs[1] else 1
    assert q.modes[0] == want
    d = q.dequantize()
    assert sum((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(x, d)) == errs[want]


def test_select8_picks_flint_for_heavy_tails_and_int_for_uniform():
    rng = np.random.default_rng(0)
    assert golden.ant.select(rng.standard_t(1, 1000), bits=8).modes[0] == 1
    assert golden.ant.select(rng.uniform(-1, 1, 1000), bits=8).modes[0] == 0


@given(st.lists(st.floats(-100, 100, width=16), min_size=2, max_size=24),
       st.integers(-6, 6))
def test_select8_invariant_to_power_of_two(vals, k):
    x = np.array(vals, dtype=np.float64)
    # keep the FP16 scale (amax / 127 or / 64, times 2**k) normal: then it scales exactly
    assume(np.abs(x).max() >= 1)
    a, b = golden.ant.select(x, bits=8), golden.ant.select(np.ldexp(x, k), bits=8)
    assert a.modes.tolist() == b.modes.tolist()
    assert np.array_equal(a.elements, b.elements)
    assert np.array_equal(np.ldexp(a.dequantize(), k), b.dequantize())


def test_select_torch_input():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_t(2, (6, 8)).astype(np.float32)
    for bits in (4, 8):
        a = golden.ant.select(x, bits=bits)
        b = golden.ant.select(torch.from_numpy(x), bits=bits)
        assert a.modes.tolist() == b.modes.tolist()
        assert np.array_equal(a.elements, b.elements) and np.array_equal(a.scales, b.scales)
