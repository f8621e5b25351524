"""Strategies for tile-format operands (``mxsf_tile``), drawn as stored tiles, shared by
``tests/hw/test_systolic_tile.py`` and ``tests/hw/test_tilestore.py``."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mxhw import golden
from mxhw.golden.arith import fixed
from mxhw.golden.quantize import MXArray, quantize
from mxhw.golden.tile import matmul
from mxhw.systolic.tilearray import tile_words  # the stores' word format, for the tests

__all__ = ["SHAPES", "tile_operand", "tile_words", "training_step"]

#: tile shapes drawn (rows x cols); 8 x 4 is the registered ``mxsf_tile``
SHAPES = [(8, 4), (4, 8), (4, 4), (2, 4), (1, 2)]


def _codes(values):
    return [int(c) for c in np.flatnonzero(np.isfinite(values))]


@st.composite
def tile_operand(draw, fmt, shape, reserved=False, nan=False, spread=4):
    """A stored tile operand of ``fmt`` and ``shape``: per tile a scale code (within
    ``spread`` of the bias; ``nan``: a few NaN codes) and a mode; per element a code of
    its tile's mode."""
    r, c = fmt.block
    tshape = (-(-shape[0] // r), -(-shape[1] // c))
    s = fmt.scale
    scales = draw(hnp.arrays(np.int64, tshape, elements=st.integers(s.bias - spread,
                                                                    s.bias + spread)))
    if nan:
        hit = draw(hnp.arrays(np.bool_, tshape, elements=st.sampled_from([False] * 5 + [True])))
        scales[hit] = s.nan_code
    modes = draw(hnp.arrays(np.int64, tshape, elements=st.integers(0, 1)))
    w, sm = fmt.candidates
    cw = draw(hnp.arrays(np.int64, shape, elements=st.sampled_from(_codes(w.table))))
    cs = draw(hnp.arrays(np.int64, shape, elements=st.sampled_from(_codes(sm.table))))
    if reserved:
        cs = cs | (draw(hnp.arrays(np.int64, shape, elements=st.sampled_from(
            [0] * 19 + [1, 2, 3]))) << 6)
    full = np.repeat(np.repeat(modes, r, 0), c, 1)[:shape[0], :shape[1]]
    return MXArray(fmt, tuple(shape), 1, np.where(full == 1, cs, cw), scales, modes)


def training_step():
    """``(acc, cases)``: one linear layer's three products from one quantised copy each
    of X (8 x 8), W (8 x 4) and dY (8 x 4) in ``mxsf_tile``; each case ``(a, b,
    transpose_a, transpose_b, want)``, ``want`` from ``golden.tile.training_gemms``
    (checked equal to ``golden.tile.matmul`` with the flags)."""
    rng = np.random.default_rng(35)
    x = quantize(rng.standard_normal((8, 8)), "mxsf_tile")
    w = quantize(rng.standard_normal((8, 4)) * 4, "mxsf_tile")
    dy = quantize(rng.standard_normal((8, 4)) / 8, "mxsf_tile")
    acc = fixed(32, 16)
    y, dx, dw = golden.tile.training_gemms(x, w, dy, acc)
    cases = [(x, w, False, False, y), (dy, w, False, True, dx), (x, dy, True, False, dw)]
    for a, b, ta, tb, want in cases:
        assert np.array_equal(matmul(a, b, acc, transpose_a=ta, transpose_b=tb), want)
    return acc, cases
