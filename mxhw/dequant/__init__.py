"""Dequantisation and re-quantisation blocks: shared-exponent aligner, re-quantiser (fixed
point or FP32 to OCP MX or MXSF; with ``"mxsf"`` it is the MXSF mode switch's quantising
side, the per-block mode choice), MXSF mode switch decoding side, bit-serial group
dequantiser."""

from .aligner import Aligner
from .mxsf import MXSFDecoder
from .requant import Requantizer
from .bitserial import BitSerialDequant

__all__ = ["Aligner", "MXSFDecoder", "Requantizer", "BitSerialDequant"]
