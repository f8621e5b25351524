"""NVFP4 operands drawn code by code, for the golden twin and the arrays."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mxhw import golden
from mxhw.golden.quantize import MXArray

NV = golden.formats.get("nvfp4")


@st.composite
def nvfp4_operand(draw, shape, axis, nan=False):
    """An NVFP4 operand (blocks of 16 along ``axis``): element codes, block scale codes
    (negative ones too; ``nan``: also both E4M3 NaN codes, 0x7F and 0xFF) and a finite
    positive per-tensor scale, each drawn."""
    bshape = (shape[0], shape[1] // 16) if axis == 1 else (shape[0] // 16, shape[1])
    el = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 15)))
    sc = st.integers(0, 0x7E) | st.integers(0x80, 0xFE)
    if nan:
        sc = sc | st.sampled_from([0x7F, 0xFF])
    scales = draw(hnp.arrays(np.int64, bshape, elements=sc))
    t = draw(st.floats(2.0 ** -60, 2.0 ** 60, width=32))
    tbits = int(np.float32(t).view(np.uint32))
    return MXArray(NV, tuple(shape), axis, el, scales,
                   tensor_scale=np.full((1, 1), tbits, dtype=np.int64))
