"""Host-side helpers: tile MX operands into array transfers and reassemble results."""

from __future__ import annotations

import numpy as np

__all__ = ["array_beats", "tile_order"]


def tile_order(M, N, rows, cols):
    """Output tiles ``(m0, n0)`` in the order the drivers feed them (row-major)."""
    return [(m0, n0) for m0 in range(0, M, rows) for n0 in range(0, N, cols)]


def array_beats(a, b, rows, cols, m0, n0):
    """Input transfers (dicts for :class:`SystolicArray`'s ``i``) for the output tile at
    ``(m0, n0)`` of ``C = a @ b`` (MXArrays, a along axis 1, b along axis 0). Rows/columns
    beyond the matrix are fed as zero codes with scale code 0 (their results are unused)."""
    M, K = a.shape
    N = b.shape[1]
    k = a.fmt.block_size
    beats = []
    for kk in range(K):
        av = [int(a.elements[m0 + i, kk]) if m0 + i < M else 0 for i in range(rows)]
        asc = [int(a.scales[m0 + i, kk // k]) if m0 + i < M else 0 for i in range(rows)]
        bv = [int(b.elements[kk, n0 + j]) if n0 + j < N else 0 for j in range(cols)]
        bsc = [int(b.scales[kk // k, n0 + j]) if n0 + j < N else 0 for j in range(cols)]
        beats.append({"a": av, "a_scale": asc, "b": bv, "b_scale": bsc,
                      "last": int(kk == K - 1)})
    return beats


def zero_code(fmt):
    """A code of ``fmt``'s element that decodes to +0."""
    return int(np.flatnonzero(fmt.element.table == 0)[0])
