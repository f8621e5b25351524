"""MX-SAFE (MXSF): two element modes per block, chosen by minimum squared error.

Source: Park, Koo, Hwang, Kung, arXiv 2605.24391 (2026). The paper's bit-level encoding is
not available; the encoding below is ours, fixed in ``docs/FORMATS.md``:

* one E8M0 scale, one mode bit, 32 elements of 8 bits;
* mode W (index 0): sign, 2 exponent bits, 5 mantissa bits, bias 1, subnormals, no
  Inf/NaN; max 1.96875 * 2**2 = 7.875, emax 2;
* mode S (index 1): the fp6_e3m2 value set (bias 3, max 28, emax 4) in the low 6 bits of
  the 8-bit element, top 2 bits zero. Expressed as an 8-bit *value table*: codes 0..63 hold
  exactly the fp6_e3m2 decode table (same bit layout, so ``code & 63`` is the fp6 code and
  its RNE tie parity is the fp6 mantissa parity), codes 64..255 are reserved and decode
  to NaN (the encoder never produces them);
* scale: the OCP floor rule with the chosen mode's emax;
* mode: the smaller exact squared error against the input, ties to mode W.

``mxsf_tile`` uses 2-D tiles (8 x 4 by default) over the last two axes; :func:`mxsf_tile`
makes other tile shapes. A tile of ``(r, c)`` on a matrix gives the same codes as a tile of
``(c, r)`` on its transpose.
"""

from __future__ import annotations

import numpy as np

from . import formats as _f
from .params import check_int

__all__ = ["MXSF_W", "MXSF_S", "MXSF", "MXSF_TILE", "mxsf_tile"]

MXSF_W = _f.register(_f.fp_format(
    "mxsf_w", 2, 5, bias=1,
    doc="MXSF mode W element (our encoding, docs/FORMATS.md): sign, 2 exponent bits, 5 mantissa "
        "bits, bias 1, subnormals, no Inf/NaN; max 7.875, emax 2."))

_S_VALUES = np.full(256, np.nan)
_S_VALUES[:64] = _f.get("fp6_e3m2").table
MXSF_S = _f.register(_f.table_format(
    "mxsf_s", _S_VALUES,
    doc="MXSF mode S element (our encoding, docs/FORMATS.md): the fp6_e3m2 values (bias 3, max "
        "28, emax 4) in the low 6 bits of an 8-bit code, codes 0..63 = fp6_e3m2 codes; "
        "codes 64..255 (top bits non-zero) are reserved and decode to NaN."))

_DOC = ("MX-SAFE (arXiv 2605.24391), our encoding (docs/FORMATS.md): E8M0 scale, 1 mode bit "
        "(0 = W: E2M5 bias 1; 1 = S: fp6_e3m2 in the low 6 bits), 8-bit elements; OCP floor "
        "scale rule with the mode's emax; per block the mode with the smaller exact squared "
        "error, ties to W.")

MXSF = _f.register(_f.BlockFormat(
    name="mxsf", candidates=(MXSF_W, MXSF_S), scale=_f.get("e8m0"), block=32,
    scale_rule="ocp_floor", doc=_DOC + " Blocks of 1 x 32 along the quantised axis."))


def mxsf_tile(rows: int = 8, cols: int = 4) -> _f.BlockFormat:
    """The MXSF format on 2-D tiles of ``rows x cols`` over the last two axes.

    ``mxsf_tile()`` is the registered ``mxsf_tile`` (8 x 4); other shapes return a new
    (unregistered) descriptor named ``mxsf_tile{rows}x{cols}``.
    """
    check_int("mxsf_tile: rows", rows, 1)
    check_int("mxsf_tile: cols", cols, 1)
    if (rows, cols) == (8, 4) and _f.registered("mxsf_tile"):
        return _f.registered("mxsf_tile")
    name = "mxsf_tile" if (rows, cols) == (8, 4) else f"mxsf_tile{rows}x{cols}"
    return _f.BlockFormat(
        name=name, candidates=(MXSF_W, MXSF_S), scale=_f.get("e8m0"), block=(rows, cols),
        scale_rule="ocp_floor", doc=_DOC + f" 2-D tiles of {rows} x {cols}.")


MXSF_TILE = _f.register(mxsf_tile(8, 4))
