"""Dequantisation and re-quantisation blocks: shared-exponent aligner, re-quantiser, MXSF
mode switch (decoding side)."""

from .aligner import Aligner
from .mxsf import MXSFDecoder
from .requant import Requantizer

__all__ = ["Aligner", "MXSFDecoder", "Requantizer"]
