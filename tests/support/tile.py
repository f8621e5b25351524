"""Strategies for tile-format operands (``mxsf_tile``), drawn as stored tiles, shared by
``tests/hw/test_systolic_tile.py`` and ``tests/hw/test_tilestore.py``."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mxhw.golden.quantize import MXArray
from mxhw.systolic.tilearray import tile_words  # the stores' word format, for the tests

__all__ = ["SHAPES", "tile_operand", "tile_words"]

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
