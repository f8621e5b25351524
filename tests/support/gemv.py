"""Shared drivers of the GEMV unit tests: a test SoC with the unit
(:func:`GemvSoCConfig`: a :class:`~mxhw.soc.top.SoCConfig` with ``gemv_pes > 0``) and Hypothesis strategies drawing BitMoD weights and MX activation vectors
as codes, so failures shrink to small cases."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mxhw import golden
from mxhw.golden import bitserial as bs
from mxhw.golden.gemv_unit import BLOCK
from mxhw.golden.quantize import MXArray
from mxhw.soc.top import SoCConfig

__all__ = ["GemvSoCConfig", "bitmod_weights", "mx_vector"]


def GemvSoCConfig(**kw):
    """A test SoC: the core (no GEMM unit by default) plus a GEMV unit at ``GEMV_BASE``
    (4 PEs x 4 lanes, up to 16 x 128 weights, MXINT8 activations, every family)."""
    fields = dict(rows=0, gemv_pes=4, gemv_lanes=4, gemv_max_rows=16, gemv_max_cols=128,
                  gemv_act="mxint8", gemv_families="bitmod_fp4,bitmod_fp3,int4,int3")
    return SoCConfig(**{**fields, **kw})


@st.composite
def bitmod_weights(draw, family, rows, cols, group=BLOCK, scale_bits=8, exp=(-12, 4)):
    """A :class:`golden.bitserial.BitModInt` drawn as codes: every code of the group's
    type, the type index, scales over the whole range, row exponents in ``exp``."""
    cands = bs.family(family)
    G = cols // group
    types = draw(arrays(np.int64, (rows, G), elements=st.integers(0, len(cands) - 1)))
    cb = cands[0].code_bits
    codes = draw(arrays(np.int64, (rows, cols), elements=st.integers(0, (1 << cb) - 1)))
    scales = draw(arrays(np.int64, (rows, G),
                         elements=st.integers(1, (1 << scale_bits) - 1)))
    row_exp = draw(arrays(np.int64, rows, elements=st.integers(*exp)))
    return bs.BitModInt(family, group, scale_bits, codes, types, scales, row_exp)


@st.composite
def mx_vector(draw, fmt, cols, spread=6, nan=False):
    """An MX vector of ``fmt`` drawn as codes: any element code (non-finite ones too when
    ``nan``), scales ``2**-spread .. 2**spread``, with ``nan`` also the NaN scale."""
    f = golden.formats.get(fmt)
    el = f.element
    finite = [c for c in range(el.n_codes) if nan or not el.nonfinite_mask[c]]
    elements = draw(arrays(np.int64, cols, elements=st.sampled_from(finite)))
    scale = st.integers(127 - spread, 127 + spread)
    if nan:
        scale = st.one_of(scale, st.just(f.scale.nan_code))
    scales = draw(arrays(np.int64, cols // f.block_size, elements=scale))
    return MXArray(f, (cols,), 0, elements, scales, None)
