"""Block scales that are not powers of two (NVFP4's FP8 E4M3) in the arrays' block-end
datapath.

A power-of-two scale pair only shifts a block sum (:func:`~mxhw.systolic.grid.scale_code_sum`).
An E4M3 pair is decoded (:func:`~mxhw.formats.unpack`): each scale is ``sig * 2**(t + lo -
man_bits)`` with a 4-bit significand ``sig`` (hidden bit included), ``t = max(exponent
field, 1) - 1`` and ``lo = 1 - bias``; the signed product of the two significands (9 bits)
multiplies the finished exact block sum, and ``t_a + t_b`` drives the same grid shift as a
pair of E8M0 codes (:func:`~mxhw.systolic.grid.grid_shift_from_sum`). So the block sum
times both block scales reaches the accumulator exactly as golden's ``round_shift`` puts it
there; the per-tensor FP32 scales stay with the host (``golden.nvfp4_gemm``). Either E4M3
NaN code (0x7F, 0xFF) makes the block NaN.

NVFP4 goes with NVFP4 only (blocks of 16), ``fixed`` accumulation, the bit-parallel PEs
with per-PE accumulators (output-stationary) and the weight-stationary columns
(:func:`check_block_scaled`).

Golden twin: :func:`mxhw.golden.nvfp4_gemm.gemm`.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal, signed

from ..formats import Unpacked, unpack
from .grid import scale_code_sum, scale_nan, scale_offset

__all__ = ["fp_scaled", "check_block_scaled", "block_scale", "scale_block_sum"]


def fp_scaled(fmt):
    """``fmt`` (a block format) has floating-point block scales (NVFP4: FP8 E4M3)."""
    return fmt.scale.kind == "fp"


def check_block_scaled(fmt_a, fmt_b, acc):
    """Raise ``ValueError`` unless an NVFP4 operand pair runs with ``fixed``
    accumulation (the one datapath that applies E4M3 block scales)."""
    if (fp_scaled(fmt_a) or fp_scaled(fmt_b)) and acc.mode != "fixed":
        raise ValueError(f"NVFP4 operands need fixed-point accumulation "
                         f"(golden.arith.fixed(...)), not {acc.mode!r}")


def block_scale(m, fa, fb, a_scale, b_scale, acc, lsb_exp):
    """``(t, off, nan, sig)`` of a block pair's scale codes ``a_scale``, ``b_scale``:
    the grid shift ``d = t + off`` (``t`` unsigned), the NaN flag, and ``sig`` the signed
    product of the scales' significands for :func:`scale_block_sum` (None for power-of-two
    scales: ``t`` is then :func:`~mxhw.systolic.grid.scale_code_sum`)."""
    if not (fp_scaled(fa) or fp_scaled(fb)):
        t = scale_code_sum(m, fa, fb, a_scale, b_scale)
        nan = Signal(name="scale_nan")
        m.d.comb += nan.eq(scale_nan(fa, a_scale) | scale_nan(fb, b_scale))
        return t, scale_offset(fa, fb, acc, lsb_exp), nan, None
    ua, ub = unpack(m, fa.scale, a_scale), unpack(m, fb.scale, b_scale)
    lo_a, lo_b = Unpacked(fa.scale).exp_range[0], Unpacked(fb.scale).exp_range[0]
    ta = (ua.exponent - lo_a).as_unsigned()[:fa.scale.exp_bits]
    tb = (ub.exponent - lo_b).as_unsigned()[:fb.scale.exp_bits]
    t = Signal(max(fa.scale.exp_bits, fb.scale.exp_bits) + 1, name="scale_exp_sum")
    nan = Signal(name="scale_nan")
    prod = Signal(len(ua.significand) + len(ub.significand), name="scale_sig_prod")
    sig = Signal(signed(len(prod) + 1), name="scale_sig")
    m.d.comb += [t.eq(ta + tb), nan.eq(ua.is_nan | ub.is_nan),
                 prod.eq(ua.significand * ub.significand),
                 sig.eq(Mux(ua.sign ^ ub.sign, -prod, prod))]
    off = (lo_a - fa.scale.man_bits + lo_b - fb.scale.man_bits + lsb_exp
           + (acc.frac_bits or 0))
    return t, off, nan, sig


def scale_block_sum(m, s, sig, name="s_scaled"):
    """The block sum ``s`` times the scales' significand product ``sig`` (``s`` itself
    when ``sig`` is None)."""
    if sig is None:
        return s
    out = Signal(signed(len(s) + len(sig)), name=name)
    m.d.comb += out.eq(s * sig)
    return out
