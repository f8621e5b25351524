"""Hypothesis strategies for the golden tests: float operands drawn value by value (not
from a seed), so a failure shrinks to a small, sparse array."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

__all__ = ["signed_floats", "float_arrays", "tiled_arrays"]


def signed_floats(lo_abs, hi_abs):
    """0.0, or a float of magnitude in ``[lo_abs, hi_abs]`` of either sign (0 first, so
    values shrink to zero)."""
    mag = st.floats(lo_abs, hi_abs)
    return st.one_of(st.just(0.0), mag, mag.map(lambda v: -v))


@st.composite
def float_arrays(draw, shape, lo_abs=2.0**-10, hi_abs=4.0, group=None):
    """A float64 array of ``shape`` of :func:`signed_floats` values. With ``group``, every
    run of ``group`` values along the last axis holds a nonzero value (a group the draw
    left all zero gets ``hi_abs`` as its first value)."""
    x = draw(arrays(np.float64, shape, elements=signed_floats(lo_abs, hi_abs)))
    return _fill_groups(x, group, hi_abs)


def _fill_groups(x, group, value):
    if group:
        g = x.reshape(-1, group)
        g[~g.any(axis=1), 0] = value
    return x


@st.composite
def tiled_arrays(draw, rows, cols, core=32, lo_abs=2.0**-10, hi_abs=4.0, group=None):
    """A ``rows x cols`` float64 array drawn cheaply for wide rows: a ``rows x core`` array
    of :func:`signed_floats`, repeated along each row, every repeat scaled by its own drawn
    power of two in ``[2**-4, 2**4]`` (so a row's groups differ in range); ``group`` as in
    :func:`float_arrays`."""
    base = draw(arrays(np.float64, (rows, core), elements=signed_floats(lo_abs, hi_abs)))
    reps = cols // core
    e = draw(arrays(np.int64, (rows, reps), elements=st.integers(-4, 4)))
    x = np.ldexp(np.repeat(base[:, None, :], reps, axis=1), e[:, :, None])
    return _fill_groups(x.reshape(rows, cols), group, hi_abs)
