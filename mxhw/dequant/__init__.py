"""Dequantisation and re-quantisation blocks: shared-exponent aligner, re-quantiser, MXSF
mode switch."""

from .aligner import Aligner
from .bitserial import BitSerialDequant
from .requant import Requantizer

__all__ = ["Aligner", "BitSerialDequant", "Requantizer"]
