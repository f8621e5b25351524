"""Dequantisation and re-quantisation blocks: shared-exponent aligner, re-quantiser, MXSF
mode switch (decoding side), bit-serial group dequantiser."""

from .aligner import Aligner
from .mxsf import MXSFDecoder
from .requant import Requantizer
from .bitserial import BitSerialDequant

__all__ = ["Aligner", "MXSFDecoder", "Requantizer", "BitSerialDequant"]
