"""Host-side helpers: tile MX operands into array transfers and reassemble results."""

from __future__ import annotations

import numpy as np

__all__ = ["array_beats", "tile_order", "ws_passes", "ws_beats", "ws_engine_beats", "zero_code"]


def tile_order(M, N, rows, cols):
    """Output tiles ``(m0, n0)`` in the order the drivers feed them (row-major)."""
    return [(m0, n0) for m0 in range(0, M, rows) for n0 in range(0, N, cols)]


def array_beats(a, b, rows, cols, m0, n0):
    """Input transfers (dicts for :class:`SystolicArray`'s ``i``) for the output tile at
    ``(m0, n0)`` of ``C = a @ b`` (MXArrays, a along axis 1, b along axis 0). Rows/columns
    beyond the matrix are fed as zero codes with scale code 0 (their results are unused).
    An operand with element modes per block (MXSF) also fills ``a_mode`` / ``b_mode``
    from its ``modes`` (mode 0 beyond the matrix), an MX+ operand ``a_index`` /
    ``b_index`` from its ``index`` (0 beyond the matrix)."""
    M, K = a.shape
    N = b.shape[1]
    k = a.fmt.block_size
    beats = []
    for kk in range(K):
        av = [int(a.elements[m0 + i, kk]) if m0 + i < M else 0 for i in range(rows)]
        asc = [int(a.scales[m0 + i, kk // k]) if m0 + i < M else 0 for i in range(rows)]
        bv = [int(b.elements[kk, n0 + j]) if n0 + j < N else 0 for j in range(cols)]
        bsc = [int(b.scales[kk // k, n0 + j]) if n0 + j < N else 0 for j in range(cols)]
        beat = {"a": av, "a_scale": asc, "b": bv, "b_scale": bsc, "last": int(kk == K - 1)}
        if a.modes is not None:
            beat["a_mode"] = [int(a.modes[m0 + i, kk // k]) if m0 + i < M else 0
                              for i in range(rows)]
        if b.modes is not None:
            beat["b_mode"] = [int(b.modes[kk // k, n0 + j]) if n0 + j < N else 0
                              for j in range(cols)]
        if a.index is not None:
            beat["a_index"] = [int(a.index[m0 + i, kk // k]) if m0 + i < M else 0
                               for i in range(rows)]
        if b.index is not None:
            beat["b_index"] = [int(b.index[kk // k, n0 + j]) if n0 + j < N else 0
                               for j in range(cols)]
        beats.append(beat)
    return beats


def zero_code(fmt):
    """A code of ``fmt``'s element that decodes to 0 (in every element mode, for MXSF)."""
    zero = np.logical_and.reduce([c.table == 0 for c in fmt.candidates])
    return int(np.flatnonzero(zero)[0])


def ws_passes(a, b, rows, cols, depth, m0, n0):
    """The passes of the weight-stationary output tile at ``(m0, n0)`` (``depth`` rows of
    A by ``cols`` columns of B) of ``C = a @ b``: a list of ``(acts, weights)``, ``acts``
    the ``depth`` activation transfers (dicts without ``w``), ``weights`` the ``rows``
    weight rows (``w``, ``w_scale``). Operands with element modes per block (MXSF) add
    ``a_mode`` to the activations and ``w_mode`` to the weight rows (mode 0 beyond M / N);
    MX+ operands ``a_index`` and ``w_index`` (their blocks' indices, 0 beyond M / N).

    Each pass covers up to ``rows`` consecutive K elements of one MX block (a block of
    ``k`` elements takes ``ceil(k / rows)`` passes); K elements a pass does not cover, rows
    beyond M and columns beyond N are fed as zero codes (scale code 0)."""
    M, K = a.shape
    N = b.shape[1]
    k = a.fmt.block_size
    za, zb = zero_code(a.fmt), zero_code(b.fmt)
    per_block = -(-k // rows)
    nb = K // k
    passes = []
    for j in range(nb):
        for p in range(per_block):
            ks = [j * k + p * rows + r for r in range(rows)]
            ks = [kk if kk < (j + 1) * k else None for kk in ks]
            flags = {"block_first": int(p == 0), "block_end": int(p == per_block - 1),
                     "tile_first": int(j == 0),
                     "last": int(j == nb - 1 and p == per_block - 1)}
            acts = []
            for i in range(depth):
                mm = m0 + i
                av = [int(a.elements[mm, kk]) if mm < M and kk is not None else za
                      for kk in ks]
                asc = int(a.scales[mm, j]) if mm < M else 0
                act = {"a": av, "a_scale": asc, **flags}
                if a.modes is not None:
                    act["a_mode"] = int(a.modes[mm, j]) if mm < M else 0
                if a.index is not None:
                    act["a_index"] = int(a.index[mm, j]) if mm < M else 0
                acts.append(act)
            ws = [int(b.scales[j, n0 + c]) if n0 + c < N else 0 for c in range(cols)]
            wm = ({} if b.modes is None else
                  {"w_mode": [int(b.modes[j, n0 + c]) if n0 + c < N else 0
                              for c in range(cols)]})
            if b.index is not None:
                wm["w_index"] = [int(b.index[j, n0 + c]) if n0 + c < N else 0
                                 for c in range(cols)]
            weights = [{"w": [int(b.elements[kk, n0 + c]) if n0 + c < N and kk is not None
                              else zb for c in range(cols)], "w_scale": ws, **wm}
                       for kk in ks]
            passes.append((acts, weights))
    return passes


def ws_beats(a, b, rows, cols, depth):
    """All input transfers (dicts for a weight-stationary :class:`SystolicArray`'s ``i``)
    of ``C = a @ b``, output tiles ``depth x cols`` in :func:`tile_order`.

    The first pass's weights load in ``rows`` weight-only transfers; after that, the next
    pass's weight rows ride on the current pass's activation transfers (the first
    ``min(depth, rows)`` of them; any rest follow as weight-only transfers). With
    ``depth >= rows`` the only weight-only transfers are the first ``rows``."""
    M, N = a.shape[0], b.shape[1]
    passes = [p for m0, n0 in tile_order(M, N, depth, cols)
              for p in ws_passes(a, b, rows, cols, depth, m0, n0)]
    za, fb = zero_code(a.fmt), b.fmt
    idle_a = {"a": [za] * rows, "a_scale": 0, "act": 0, "block_first": 0, "block_end": 0,
              "tile_first": 0, "last": 0, **({} if a.modes is None else {"a_mode": 0}),
              **({} if a.index is None else {"a_index": 0})}
    no_w = {"w": [zero_code(fb)] * cols, "w_scale": [0] * cols, "w_valid": 0,
            **({} if b.modes is None else {"w_mode": [0] * cols}),
            **({} if b.index is None else {"w_index": [0] * cols})}
    beats = [{**idle_a, **w, "w_valid": 1} for w in passes[0][1]]
    for i, (acts, _) in enumerate(passes):
        nxt = passes[i + 1][1] if i + 1 < len(passes) else []
        for n, act in enumerate(acts):
            w = {**nxt[n], "w_valid": 1} if n < len(nxt) else no_w
            beats.append({**act, "act": 1, **w})
        beats += [{**idle_a, **w, "w_valid": 1} for w in nxt[len(acts):]]
    return beats


def ws_engine_beats(a, b, rows, cols, depth):
    """Input transfers for a weight-stationary :class:`GemmEngine` (``depth >= rows``):
    :func:`ws_beats` without the flags the engine's controller makes itself (modes, for
    MXSF operands, kept)."""
    if depth < rows:
        raise ValueError(f"depth must be >= rows ({rows}) for the engine, not {depth}")
    keep = ("a", "a_scale", "a_mode", "a_index", "w", "w_scale", "w_mode", "w_index")
    return [{f: beat[f] for f in keep if f in beat}
            for beat in ws_beats(a, b, rows, cols, depth)]
