"""ANT flint tables and the per-tensor selection (brute force with Fractions)."""
from fractions import Fraction

import numpy as np
import pytest

from mxhw import golden
from mxhw.golden import formats as F


def test_flint4_tables():
    pub = [0, 1, 2, 3, 4, 6, 8, 16]  # x4, FORMATS.md / BitMoD's ANT list
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
    with pytest.raises(ValueError, match=r"^ant_format: bits must be 4 \(flint8 is not "
                                         r"defined\), not 8$"):
        golden.ant.select(np.ones(4), bits=8)
