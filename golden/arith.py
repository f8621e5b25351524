"""Reference arithmetic over MX operands: the golden twins of the hardware datapaths.

Everything is exact in integers until a documented rounding:

* :func:`element_ints` -- every element as ``int * 2**lsb`` (its exact fixed-point form);
* :func:`element_product` -- exact products of element codes;
* :func:`block_dots` -- OCP ``Dot``: per block pair, the exact sum of exact products, with
  both scales folded into the exponent: ``value = S * 2**E``;
* :func:`gemm` / :func:`dot` -- sums of block dots under an explicit
  :class:`Accumulation`: ``exact`` (exact sum, one final RNE rounding to FP32, as PULP's
  MXDOTP does), ``fp32`` (each block dot rounded RNE to FP32, then added in FP32 RNE in
  ascending block order starting from +0.0) or ``fixed`` (each block dot rounded to a
  fixed-point grid, then added in block order in a register of stated width with a stated
  overflow rule);
* :func:`requantize` -- results back to an MX format (the OCP quantiser).

Scales: power-of-two scales (E8M0, MASE's signed exponent) fold into ``E``. A binary32
(FP32) scale, the per-tensor FP8 formats', is ``sig * 2**exp`` with a 24-bit integer
``sig``; both operands' ``sig`` multiply into ``S``, so every accumulation mode stays exact
up to its own documented rounding (never a float product of scales). A per-tensor operand
has one scale along K, so it pairs with any block size of the other operand (the other's
K block is used; two per-tensor operands make one block of the whole K). With a 2-D tile
operand the K blocks are the greatest common divisor of the two K extents (the runs over
which both scales are constant), so tiles pair along K in either orientation. Other scale
formats (FP16 group scales, zero points) raise ValueError.

Special values: a block with a NaN scale gives NaN (OCP v1.0), and so does a block with an
Inf scale (binary32 only; the quantiser never makes one); element NaN/Inf codes (FP8 only)
follow IEEE semantics of the products and sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import formats as _formats
from .formats import ElementFormat
from .params import check_choice, check_int
from .quantize import MXArray, expand_blocks, quantize

__all__ = ["Accumulation", "EXACT", "FP32", "fixed", "element_ints", "element_product",
           "block_dots", "BlockDots", "gemm", "sum_blocks", "dot", "requantize",
           "exact_to_float32",
           "round_shift"]

_INT_SAFE = 1 << 62


@dataclass(frozen=True)
class Accumulation:
    """How block dot products are summed; see the module doc.

    Parameters
    ----------
    mode : {"exact", "fp32", "fixed"}
    width : int
        ``fixed``: accumulator width in bits (two's complement).
    frac_bits : int
        ``fixed``: the accumulator's LSB weighs ``2**-frac_bits``.
    overflow : {"saturate", "wrap"}
        ``fixed``: what an addition that leaves the register's range does.
    rounding : {"floor", "rne"}
        ``fixed``: how a block dot finer than the grid is rounded onto it (``floor`` is an
        arithmetic right shift).
    """

    mode: str = "exact"
    width: int | None = None
    frac_bits: int | None = None
    overflow: str = "saturate"
    rounding: str = "floor"

    def __post_init__(self):
        check_choice("mode", self.mode, ("exact", "fp32", "fixed"))
        if self.mode == "fixed":
            check_int("fixed accumulation: width", self.width, 2)
            check_int("fixed accumulation: frac_bits", self.frac_bits)
            check_choice("overflow", self.overflow, ("saturate", "wrap"))
            check_choice("rounding", self.rounding, ("floor", "rne"))
        elif self.width is not None or self.frac_bits is not None:
            raise ValueError(f"width and frac_bits apply to fixed accumulation, not {self.mode!r}")


EXACT = Accumulation("exact")
FP32 = Accumulation("fp32")


def fixed(width, frac_bits, overflow="saturate", rounding="floor"):
    """Fixed-point accumulation: see :class:`Accumulation`."""
    return Accumulation("fixed", width=width, frac_bits=frac_bits, overflow=overflow,
                        rounding=rounding)


# ---- exact element arithmetic ----------------------------------------------------------

def element_ints(mx: MXArray) -> tuple[np.ndarray, int, np.ndarray]:
    """Elements of ``mx`` as exact integers on one grid.

    Returns ``(ints, lsb, nonfinite)``: every finite element equals ``ints * 2**lsb``
    (its scale not included); ``nonfinite`` marks NaN/Inf element codes (their ints are 0).
    With several candidate formats, ``lsb`` is the finest of their grids.
    """
    cands = mx.fmt.candidates
    lsb = min(c.lsb_exp for c in cands)
    if mx.modes is None:
        c = cands[0]
        ints = c.int_table[mx.elements] << (c.lsb_exp - lsb)
        if mx.fmt.codec == "mxplus":  # the extended element of each block (golden.mxplus)
            from .mxplus import element_ints as _ext
            ext, m = _ext(mx, lsb)
            return np.where(m, ext, ints), lsb, c.nonfinite_mask[mx.elements] & ~m
        return ints, lsb, c.nonfinite_mask[mx.elements]
    modes = expand_blocks(mx.modes, mx.fmt, mx.shape, mx.axis)
    ints = np.zeros(mx.shape, dtype=np.int64)
    bad = np.zeros(mx.shape, dtype=bool)
    for i, c in enumerate(cands):
        sel = modes == i
        ints[sel] = c.int_table[mx.elements[sel]] << (c.lsb_exp - lsb)
        bad[sel] = c.nonfinite_mask[mx.elements[sel]]
    return ints, lsb, bad


def element_product(fmt_a, codes_a, fmt_b, codes_b):
    """Exact products of element codes: ``(p, exp)`` with value ``p * 2**exp``.

    ``p`` is an int64 array (object array of Python ints if it could overflow int64).
    NaN/Inf codes raise ValueError: their products are not numbers.
    """
    fa, fb = _formats.get(fmt_a), _formats.get(fmt_b)
    for f in (fa, fb):
        if not isinstance(f, ElementFormat):
            raise TypeError(f"element_product takes element formats, not {f!r}")
    ca, cb = np.asarray(codes_a), np.asarray(codes_b)
    if fa.nonfinite_mask[ca].any() or fb.nonfinite_mask[cb].any():
        raise ValueError("element_product: NaN/Inf codes have no exact product")
    ia, ib = fa.int_table[ca], fb.int_table[cb]
    if _max_abs(fa) * _max_abs(fb) >= _INT_SAFE:
        ia, ib = ia.astype(object), ib.astype(object)
    return ia * ib, fa.lsb_exp + fb.lsb_exp


def _max_abs(f: ElementFormat) -> int:
    return int(np.abs(f.int_table).max())


@dataclass(frozen=True)
class BlockDots:
    """Exact per-block dot products of a GEMM: ``value[m, n, b] = S * 2**E``.

    ``S`` is int64 or an object array of Python ints; ``special`` holds NaN/Inf (float64)
    where a block is not a finite number, else 0.0, with ``is_special`` marking them.
    """

    S: np.ndarray
    E: np.ndarray
    special: np.ndarray
    is_special: np.ndarray


def _check_gemm_operands(a: MXArray, b: MXArray):
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, MXArray):
            raise TypeError(f"{name} must be an MXArray (see golden.quantize), not {type(x)!r}")
        if len(x.shape) != 2:
            raise ValueError(f"{name} must be 2-D, not of shape {x.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    if isinstance(a.fmt.block, int) and a.axis != 1:
        raise ValueError("a must be quantised along its columns (axis=1, the K axis)")
    if isinstance(b.fmt.block, int) and b.axis != 0:
        raise ValueError("b must be quantised along its rows (axis=0, the K axis)")
    ka = a.fmt.block[1] if isinstance(a.fmt.block, tuple) else a.fmt.block
    kb = b.fmt.block[0] if isinstance(b.fmt.block, tuple) else b.fmt.block
    # a per-tensor operand has one scale along K: it takes the other's block (or all of K)
    if ka is None:
        ka = a.shape[1] if kb is None else kb
    if kb is None:
        kb = ka
    if ka != kb:
        if not (isinstance(a.fmt.block, tuple) or isinstance(b.fmt.block, tuple)):
            raise ValueError(f"a and b blocks differ along K ({ka} vs {kb})")
        # a tile operand (either orientation): the K blocks are the runs over which both
        # operands' scales are constant (an 8 x 4 tile of A against 8 x 4 tiles of B: 4)
        ka = math.gcd(ka, kb)
    if a.shape[1] % ka:
        raise ValueError(f"K = {a.shape[1]} must be a multiple of the block size {ka}")
    return ka


def _scale_parts(mx: MXArray, fp_scales: bool = False):
    """Every scale as ``sig * 2**exp`` (exact integers), per element position.

    Returns ``(sig, exp, bad)`` of shape ``mx.shape``: ``sig`` int64 (1 for power-of-two
    scales, the 24-bit significand of a binary32 scale, 0 for a zero scale), ``exp`` int64,
    ``bad`` marks NaN/Inf scales (their ``sig`` is 0).
    """
    s = mx.fmt.scale
    if fp_scales and s.kind == "fp":
        # an FP8 block scale (NVFP4's E4M3): exactly int_table[code] * 2**lsb_exp
        codes = np.asarray(mx.scales, dtype=np.int64)
        bad = s.nonfinite_mask[codes]
        sig = np.where(bad, 0, s.int_table[codes]).astype(np.int64)
        exp = np.full(codes.shape, s.lsb_exp, dtype=np.int64)
        return tuple(expand_blocks(v, mx.fmt, mx.shape, mx.axis) for v in (sig, exp, bad))
    if s.kind not in ("pow2", "int", "binary32"):
        raise ValueError(f"exact arithmetic needs power-of-two or binary32 scales; "
                         f"{mx.fmt.name} has {s.name} scales (dequantize() and use float "
                         f"arithmetic instead)")
    sv = mx.scale_values()  # 2**e for signed-exponent (kind "int") scales
    bad = ~np.isfinite(sv)
    m, e = np.frexp(np.where(bad, 1.0, sv))  # sv = m * 2**e, 0.5 <= |m| < 1 (or 0)
    if s.kind == "binary32":
        # exact: a binary32 value (subnormals too) has at most 24 significant bits
        sig = np.ldexp(m, 24).astype(np.int64)
        exp = e.astype(np.int64) - 24
    else:
        sig = np.ones(sv.shape, dtype=np.int64)
        exp = e.astype(np.int64) - 1
    sig = np.where(bad, 0, sig)
    exp = np.where(bad, 0, exp)
    return tuple(expand_blocks(v, mx.fmt, mx.shape, mx.axis) for v in (sig, exp, bad))


def block_dots(a: MXArray, b: MXArray, fp_scales: bool = False) -> BlockDots:
    """Exact OCP ``Dot`` of every block pair of ``a`` (M x K) and ``b`` (K x N).

    ``fp_scales``: also take FP8 block scales (NVFP4's E4M3: ``int_table[code] *
    2**lsb_exp``, exact), without any per-tensor scale (:mod:`golden.nvfp4_gemm`)."""
    k = _check_gemm_operands(a, b)
    M, K = a.shape
    N = b.shape[1]
    nb = K // k
    ia, la, bada = element_ints(a)
    ib, lb, badb = element_ints(b)
    sa, ea, nana = _scale_parts(a, fp_scales)
    sb, eb, nanb = _scale_parts(b, fp_scales)
    A = ia.reshape(M, nb, k)
    B = ib.reshape(nb, k, N)
    bound = int(np.abs(ia).max(initial=0)) * int(np.abs(ib).max(initial=0)) * k
    big = bound >= _INT_SAFE
    if big:
        A, B = A.astype(object), B.astype(object)
    S = np.einsum("mbk,bkn->mnb", A, B) if not big else _obj_block_matmul(A, B)
    # scale significands (binary32 scales; 1 for powers of two) multiply into S, exactly
    siga = sa.reshape(M, nb, k)[:, :, 0]
    sigb = sb.reshape(nb, k, N)[:, 0, :].T
    if (siga != 1).any() or (sigb != 1).any():
        fac = siga.astype(object)[:, None, :] * sigb.astype(object)[None]
        big = big or bound * int(np.abs(siga).max(initial=0)) * int(
            np.abs(sigb).max(initial=0)) >= _INT_SAFE
        S = S.astype(object) * fac
        if not big:
            S = S.astype(np.int64)
    # scales are constant over a block: take the first position of each block
    E = (ea.reshape(M, nb, k)[:, :, 0][:, None, :] + eb.reshape(nb, k, N)[:, 0, :].T[None]
         + la + lb)
    nanblk = nana.reshape(M, nb, k)[:, :, 0][:, None, :] | nanb.reshape(nb, k, N)[:, 0, :].T[None]
    badblk_a = bada.reshape(M, nb, k).any(-1)
    badblk_b = badb.reshape(nb, k, N).any(1)
    is_special = nanblk | badblk_a[:, None, :] | badblk_b.T[None]
    special = np.zeros(S.shape, dtype=np.float64)
    if is_special.any():
        # IEEE semantics for element NaN/Inf: the float sum of float products
        va = a.element_values().reshape(M, nb, k)
        vb = b.element_values().reshape(nb, k, N)
        with np.errstate(invalid="ignore", over="ignore"):
            f = np.einsum("mbk,bkn->mnb", va, vb)
        special = np.where(is_special, np.where(nanblk, np.nan, f), 0.0)
        S = np.where(is_special, 0, S)
    return BlockDots(S=S, E=E, special=special, is_special=is_special)


def _obj_block_matmul(A, B):
    M, nb, _ = A.shape
    N = B.shape[2]
    S = np.empty((M, N, nb), dtype=object)
    for j in range(nb):
        S[:, :, j] = A[:, j, :].dot(B[j])
    return S


# ---- rounding helpers ------------------------------------------------------------------

def exact_to_float32(S, E) -> np.ndarray:
    """``S * 2**E`` rounded once, to nearest ties-to-even, to float32 (overflow to Inf).

    Exact for any Python-int ``S``: a value wider than 53 bits is first rounded to odd at
    53 bits, which makes the following float64 -> float32 RNE conversion correct.
    """
    S = np.asarray(S)
    E = np.broadcast_to(np.asarray(E), S.shape)
    if S.dtype != object and np.all(np.abs(S) < (1 << 53)):
        with np.errstate(over="ignore"):
            return np.ldexp(S.astype(np.float64), E).astype(np.float32)
    out = np.empty(S.shape, dtype=np.float64)
    for idx in np.ndindex(S.shape):
        out[idx] = _round_odd_53(int(S[idx]), int(E[idx]))
    with np.errstate(over="ignore"):
        return out.astype(np.float32)


def _round_odd_53(s: int, e: int) -> float:
    neg = s < 0
    m = -s if neg else s
    extra = m.bit_length() - 53
    if extra > 0:
        q = m >> extra
        if q << extra != m:
            q |= 1
        m, e = q, e + extra
    v = float(np.ldexp(float(m), e)) if abs(e) < 1000 else _ldexp_big(m, e)
    return -v if neg else v


def _ldexp_big(m, e):
    import math
    try:
        return math.ldexp(float(m), e)
    except OverflowError:
        return float("inf")


def round_shift(S, shift, rounding="floor"):
    """``S * 2**-shift`` rounded to an integer (arrays of ints, ``shift`` may be <= 0)."""
    S = np.asarray(S)
    shift = np.broadcast_to(np.asarray(shift), S.shape)
    out = np.empty(S.shape, dtype=object)
    for idx in np.ndindex(S.shape):
        s, sh = int(S[idx]), int(shift[idx])
        if sh <= 0:
            out[idx] = s << -sh
            continue
        q = s >> sh  # floor
        if rounding == "rne":
            r = s - (q << sh)
            half = 1 << (sh - 1)
            if r > half or (r == half and q & 1):
                q += 1
        out[idx] = q
    return out


# ---- GEMM --------------------------------------------------------------------------------

def gemm(a: MXArray, b: MXArray, acc: Accumulation = EXACT, return_raw: bool = False):
    """``C = A @ B`` over MX operands, bit-exact under the accumulation ``acc``.

    Parameters
    ----------
    a : MXArray, shape (M, K), quantised along axis 1
    b : MXArray, shape (K, N), quantised along axis 0
    acc : Accumulation
    return_raw : bool
        ``fixed`` only: also return the accumulator integers (object array).

    Returns
    -------
    float32 array (``exact``, ``fp32``) or float64 array (``fixed``: ``acc_int *
    2**-frac_bits``; exact while the width is at most 53 bits) of shape (M, N); NaN where a
    NaN block was summed.
    """
    if "nvfp4" in (getattr(getattr(x, "fmt", None), "codec", None) for x in (a, b)):
        raise ValueError("golden.gemm does not take NVFP4 (its per-tensor scales); the "
                         "arrays' twin is golden.nvfp4_gemm.gemm")
    if not isinstance(acc, Accumulation):
        raise TypeError(f"acc must be an Accumulation (EXACT, FP32, fixed(...)), not {acc!r}")
    return sum_blocks(block_dots(a, b), acc, return_raw)


def sum_blocks(d: BlockDots, acc: Accumulation, return_raw: bool = False):
    """The sum of block dots ``d`` under ``acc``: the second half of :func:`gemm`."""
    M, N, nb = d.S.shape
    special_any = d.is_special.any(-1)
    with np.errstate(invalid="ignore", over="ignore"):
        special_sum = np.where(d.is_special, d.special, 0.0).sum(-1)
    if acc.mode == "exact":
        Emin = d.E.min(axis=-1, keepdims=True) if nb else np.zeros((M, N, 1), np.int64)
        tot = (d.S.astype(object) << (d.E - Emin).astype(object)).sum(axis=-1)
        out = exact_to_float32(tot, Emin[..., 0])
        return np.where(special_any, special_sum.astype(np.float32), out)
    if acc.mode == "fp32":
        out = np.zeros((M, N), dtype=np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            for j in range(nb):
                blk = exact_to_float32(d.S[:, :, j], d.E[:, :, j])
                blk = np.where(d.is_special[:, :, j], d.special[:, :, j].astype(np.float32), blk)
                out = (out + blk).astype(np.float32)
        return out
    # fixed point
    F, W = acc.frac_bits, acc.width
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    reg = np.zeros((M, N), dtype=object)
    reg[...] = 0
    for j in range(nb):
        v = round_shift(d.S[:, :, j], -(d.E[:, :, j] + F), acc.rounding)
        reg = reg + v
        if acc.overflow == "saturate":
            reg = np.minimum(np.maximum(reg, lo), hi)
        else:
            reg = ((reg - lo) % (1 << W)) + lo
    val = np.array([float(np.ldexp(float(x), -F)) for x in reg.ravel()],
                   dtype=np.float64).reshape(M, N)
    val = np.where(special_any, np.nan, val)
    return (val, reg) if return_raw else val


def dot(a: MXArray, b: MXArray, acc: Accumulation = EXACT):
    """Dot product of two 1-D MX vectors of equal length (a sum of OCP block ``Dot``\\ s)."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, MXArray) or len(x.shape) != 1:
            raise ValueError(f"{name} must be a 1-D MXArray")
    a2 = MXArray(a.fmt, (1, a.shape[0]), 1, a.elements[None, :], a.scales[None, :],
                 None if a.modes is None else a.modes[None, :],
                 index=None if a.index is None else a.index[None, :])
    b2 = MXArray(b.fmt, (b.shape[0], 1), 0, b.elements[:, None], b.scales[:, None],
                 None if b.modes is None else b.modes[:, None],
                 index=None if b.index is None else b.index[:, None])
    return gemm(a2, b2, acc)[0, 0]


def requantize(c, fmt, axis=-1) -> MXArray:
    """Re-quantise results (e.g. a GEMM's FP32 output) to an MX format for the next layer.

    The OCP v1.0 quantiser on the exact values of ``c``: identical to :func:`quantize`.
    """
    return quantize(c, fmt, axis=axis)

