"""The OCP MX scale-rounding variants: torchao's ``ScaleCalculationMode``.

Every OCP MX block format (``mxfp8_e4m3``, ``mxfp8_e5m2``, ``mxfp6_e3m2``, ``mxfp6_e2m3``,
``mxfp4_e2m1``, ``mxint8``) has three registered variants, ``<name>_ceil``, ``<name>_even``
and ``<name>_rceil`` (scale rules ``"ocp_ceil"``, ``"ocp_even"``, ``"ocp_rceil"``); the
plain name is torchao's FLOOR (``"ocp_floor"``, OCP v1.0). Registered names rather than a
``scale_rule=`` argument: a format is data (one descriptor per name), so the rule travels
with the MXArray, the hardware parameters and ``golden.compare`` without a second argument.

Only the scale exponent differs; the elements are then encoded as for every OCP format
(``V / X`` exact, RNE, saturating). With ``amax`` the block's largest magnitude (exact,
float64), ``emax`` the element's ``emax_elem`` and ``m`` its mantissa bits
(``man_bits``; 6 for MXINT8, whose elements are 1.6 fixed point), the unbiased exponent
before clamping to E8M0's [-127, 127] is:

* ``ocp_ceil``: ``ceil(log2 amax) - emax``;
* ``ocp_even``: ``floor(log2 amax) + c - emax`` where ``c = 1`` if the significand of
  ``amax`` (in [1, 2)) is at least ``2 - 2**-(m+1)`` (torchao adds half an ulp at ``m``
  mantissa bits to the float32 bits and truncates the mantissa), else ``c = 0``;
* ``ocp_rceil``: ``d = RN32(amax / max_elem)`` (quotient in float64, then rounded to
  float32: one correct float32 rounding, by Figueroa 1995), ``ceil(RN32(log2 d))``, where
  ``RN32(log2 d)`` is ``log2 d`` rounded to float32 (computed as the float64 ``log2``
  rounded to float32). This is torchao's ``torch.ceil(torch.log2(descale))`` on float32;
  note that it is *not* the exact ``ceil(log2 d)`` of NVIDIA's ``cvt.rp.ue8m0``: a ``d``
  within about ``2**-24 * |log2 d| / ln 2`` relative above a power of two ``2**k`` has
  ``RN32(log2 d) == k`` and gets scale ``2**k`` (its maximum then saturates to
  ``max_elem``). Golden follows torchao here (the brief's reference) and tests it.

Known torchao differences outside this rule, kept out of golden (documented in
docs/FORMATS.md): a block whose scale code is 0 (``2**-127``): torchao FLOOR/CEIL/EVEN
divide its elements by ``2**-126`` and RCEIL does not scale them at all; a block with
+-Inf: torchao derives a finite scale from the Inf's bit pattern, golden gives it the NaN
scale (the OCP formats' NaN/Inf rule of golden.quantize).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RULES", "mantissa_bits", "exponents"]

RULES = ("ocp_ceil", "ocp_even", "ocp_rceil")


def mantissa_bits(elem) -> int:
    """Mantissa bits of an element format as torchao's EVEN rule uses them."""
    return elem.man_bits if elem.kind == "fp" else elem.frac_bits


def exponents(amax: np.ndarray, elem, rule: str) -> np.ndarray:
    """Unbiased scale exponents (int64, before clamping) of block maxima ``amax`` (> 0)."""
    amax = np.asarray(amax, dtype=np.float64)
    m, e = np.frexp(amax)  # amax = m * 2**e, m in [0.5, 1)
    floor_log2 = e.astype(np.int64) - 1
    if rule == "ocp_ceil":
        return np.where(m == 0.5, floor_log2, floor_log2 + 1) - elem.emax
    if rule == "ocp_even":
        sig = 2.0 * m  # in [1, 2), exact
        carry = sig >= 2.0 - 2.0 ** -(mantissa_bits(elem) + 1)
        return floor_log2 + carry.astype(np.int64) - elem.emax
    if rule == "ocp_rceil":
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            d = (amax / elem.max_magnitude).astype(np.float32)
            lg = np.log2(d.astype(np.float64)).astype(np.float32)
        lg = np.where(d == 0, -1e9, np.where(np.isinf(d), 1e9, lg))
        return np.ceil(lg.astype(np.float64)).astype(np.int64)
    raise ValueError(f"unknown scale rule {rule!r}; one of {RULES}")
