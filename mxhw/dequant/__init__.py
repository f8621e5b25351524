"""Dequantisation and re-quantisation blocks: shared-exponent aligner, re-quantiser, MXSF
mode switch."""

from .aligner import Aligner

__all__ = ["Aligner"]
