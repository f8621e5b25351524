"""Vectorised (torch) block quantisation of activations: ``golden.quantize(x, fmt, axis=1)
.dequantize()``, bit for bit, for the formats the fast layer path multiplies.

Golden's quantiser is exact but general (NumPy, a table search per element, int64 codes,
an MXArray); an activation-quantised MiniLM evaluation spent most of its time there. The
fast path only needs the exact dequantised values, so this module computes them directly
in float64 torch, following golden's definition step by step (golden/quantize.py):

1. blocks of ``fmt.block`` values along the last axis (K a multiple of the block);
2. per candidate element format: the power-of-two scale exponent from the block maximum
   by golden's own :func:`golden.quantize.scale_exponents` (called on the small array of
   block maxima), clipped to the scale format's range; the block divided by ``2**se``
   (one exact multiplication, as golden's ``ldexp``);
3. each scaled value rounded onto the element's value set (the values golden's encoder
   produces): nearest (a ``searchsorted`` over the midpoints; an exact midpoint is handed
   to golden's encoder, so every tie follows golden's tie rule) or floor;
4. several candidates (MXSF's two modes): per block the smaller float64 squared error;
   blocks whose two errors are within a relative 1e-8 are re-quantised by golden itself
   (golden decides those exactly), so the choice is golden's.

:func:`supported` says which formats take this path (power-of-two or signed-exponent
scales, 1-D blocks, no zero point or codec, rounding ``rne`` or ``floor``); anything else,
and any tensor with NaN or Inf, goes to golden. Tests compare it with golden on
Hypothesis-drawn tensors (tests/model/test_fastq.py).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .. import golden
from ..golden.quantize import scale_exponents

__all__ = ["supported", "dequantized", "element_grid"]

_TIE_MARGIN = 1e-8   # wider than golden's 1e-9: our float64 sums may differ in order


def supported(fmt) -> bool:
    """True if :func:`dequantized` computes ``fmt`` itself (else it calls golden)."""
    fmt = golden.formats.get(fmt)
    return (isinstance(fmt.block, int) and fmt.codec is None and fmt.zero_point is None
            and fmt.scale.kind in ("pow2", "int")
            and fmt.scale_rule in ("ocp_floor", "ceil_pow2", "ocp_ceil", "ocp_even",
                                   "ocp_rceil")
            and fmt.rounding in ("rne", "floor"))


@lru_cache(maxsize=None)
def element_grid(name: str):
    """(values, midpoints) of an element format as float64 tensors: the sorted distinct
    values golden's encoder produces (a symmetric integer's most negative code excluded)."""
    e = golden.formats.get(name)
    v = e.decode(e.encode(e.finite_values, rounding="rne", saturate=True))
    v = np.unique(v)
    return torch.from_numpy(v), torch.from_numpy((v[:-1] + v[1:]) / 2)


@lru_cache(maxsize=None)
def _scale_range(name: str):
    """(lowest, highest) exponent the scale format holds, from its decoded codes."""
    s = golden.formats.get(name)
    v = s.decode(np.arange(s.n_codes))
    if s.kind == "int":
        return int(v.min()), int(v.max())
    v = v[np.isfinite(v) & (v > 0)]
    return int(np.log2(v.min())), int(np.log2(v.max()))


def _round_to_grid(t: torch.Tensor, elem, rounding: str) -> torch.Tensor:
    """``t`` rounded onto the element's value set (golden's encode, then decode)."""
    vals, mids = element_grid(elem.name)
    if elem.kind in ("fp", "int"):
        # arithmetic: the grid step at t's binade (fp; subnormals share the lowest) or the
        # integer grid; round half to even picks the even significand, which for fp and
        # int is golden's even code; saturate at the ends of the value set
        if elem.kind == "fp":
            _, ex = torch.frexp(t)
            step = torch.exp2((ex - 1).clamp_(min=1 - elem.bias) - elem.man_bits)
        else:
            step = 2.0 ** -elem.frac_bits
        n = t / step                                  # exact: a power of two
        n = torch.floor(n) if rounding == "floor" else torch.round(n)
        return (n * step).clamp_(float(vals[0]), float(vals[-1]))
    flat = t.reshape(-1)
    if rounding == "floor":
        idx = torch.searchsorted(vals, flat, right=True) - 1
        return vals[idx.clamp_(0, vals.numel() - 1)].reshape(t.shape)
    idx = torch.searchsorted(mids, flat)             # midpoints strictly below
    out = vals[idx]
    j = idx.clamp(max=mids.numel() - 1)
    tie = torch.nonzero(mids[j] == flat).reshape(-1)
    if tie.numel():  # exact midpoints: golden's encoder settles them (its tie rule)
        tv = flat[tie].numpy()
        out[tie] = torch.from_numpy(elem.decode(elem.encode(tv, rounding=rounding,
                                                            saturate=True)))
    return out.reshape(t.shape)


def _candidate(xb, amax, elem, fmt):
    """Dequantised blocks (float64) of ``xb`` (..., nb, k) in one candidate element."""
    lo, hi = _scale_range(fmt.scale.name)
    a = amax.numpy()
    se = np.where(a > 0, scale_exponents(np.where(a > 0, a, 1.0), elem, fmt), lo)
    se = torch.from_numpy(np.clip(se, lo, hi).astype(np.float64)).unsqueeze(-1)
    scaled = xb * torch.exp2(-se)                   # exact (a power of two in range)
    if fmt.rounding == "floor":
        # golden keeps the sign of a value that underflowed to zero
        lost = (scaled == 0) & (xb != 0)
        if bool(lost.any()):
            scaled = torch.where(lost, torch.copysign(torch.tensor(5e-324,
                                 dtype=torch.float64), xb), scaled)
    return _round_to_grid(scaled, elem, fmt.rounding) * torch.exp2(se)


def _golden(x, fmt):
    return torch.from_numpy(golden.quantize(x.numpy(), fmt, axis=-1).dequantize())


def dequantized(x, fmt) -> torch.Tensor:
    """``golden.quantize(x, fmt, axis=-1).dequantize()`` as a float64 tensor, bit for bit,
    for a 2-D ``x`` (M x K, K a multiple of the block); golden computes it when
    :func:`supported` is False or ``x`` has NaN/Inf."""
    fmt = golden.formats.get(fmt)
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.ndim != 2:
        raise ValueError(f"dequantized takes a 2-D tensor, not shape {tuple(x.shape)}")
    M, K = x.shape
    if not supported(fmt) or K % fmt.block:
        return _golden(x, fmt)
    xb = x.reshape(M, K // fmt.block, fmt.block)
    amax = xb.abs().amax(-1)
    if not bool(torch.isfinite(amax).all()):   # NaN propagates into the maximum
        return _golden(x, fmt)
    best = best_err = close = None
    for i, elem in enumerate(fmt.candidates):
        q = _candidate(xb, amax, elem, fmt)
        if len(fmt.candidates) == 1:
            return q.reshape(M, K)
        err = ((xb - q) ** 2).sum(-1)
        if best is None:
            best, best_err = q, err
            close = torch.zeros_like(err, dtype=torch.bool)
            continue
        hi = torch.maximum(err, best_err)
        near = (err - best_err).abs() <= _TIE_MARGIN * hi
        # both reproduce the block exactly: a true tie, the first candidate keeps it
        near &= ~((hi == 0) & (q == best).all(-1))
        close |= near
        better = (err < best_err) & ~near
        best = torch.where(better.unsqueeze(-1), q, best)
        best_err = torch.where(better, err, best_err)
    idx = torch.nonzero(close)
    if idx.numel():  # near ties: golden decides (exactly), block by block
        blocks = xb[idx[:, 0], idx[:, 1]]
        best[idx[:, 0], idx[:, 1]] = torch.from_numpy(
            golden.quantize(blocks.numpy(), fmt, axis=-1).dequantize())
    return best.reshape(M, K)
