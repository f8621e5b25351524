"""mxhw.golden: the bit-exact specification of every number format and datapath.

Pure Python + NumPy (torch optional, for inputs). No Amaranth.

>>> from mxhw import golden
>>> q = golden.quantize(x, "mxfp4", axis=-1)      # -> MXArray of integer codes
>>> x_hat = q.dequantize()                        # exact values the codes stand for
"""

from . import formats
from .formats import BlockFormat, ElementFormat
from .quantize import MXArray, quantize
from . import arith
from .arith import Accumulation, EXACT, FP32, fixed, gemm, dot, requantize

__all__ = ["formats", "arith", "BlockFormat", "ElementFormat", "MXArray", "quantize",
           "decode", "encode", "Accumulation", "EXACT", "FP32", "fixed", "gemm", "dot",
           "requantize", "tile", "TransposeError", "transposed_format",
           "requantize_transposed", "matmul", "training_gemms"]


def decode(fmt, codes):
    """Exact float64 values of element ``codes`` of the element format ``fmt`` (name or
    descriptor)."""
    return _element(fmt).decode(codes)


def encode(fmt, values, rounding="rne", saturate=True):
    """Codes of ``values`` in the element format ``fmt``; see
    :meth:`ElementFormat.encode`."""
    return _element(fmt).encode(values, rounding=rounding, saturate=saturate)


def _element(fmt):
    f = formats.get(fmt)
    if not isinstance(f, ElementFormat):
        raise TypeError(f"{f.name!r} is a block format; decode/encode take element formats "
                        f"such as {f.element.name!r}")
    return f

from . import mxsf  # noqa: E402  (registers mxsf, mxsf_tile)
from . import pergroup  # noqa: E402  (registers fp16, int{n}_g128[_asym])
from . import bitmod  # noqa: E402  (registers bitmod_fp4, bitmod_fp3)
from . import mxint  # noqa: E402  (registers mxint2..7 and mxint{N}_mase)
from . import ant  # noqa: E402  (registers flint4, flint4_u, pot4, flint8, flint8_u)
from . import align  # noqa: E402  (shared-exponent alignment: golden twin of mxhw.dequant.Aligner)
from . import tile  # noqa: E402  (MXArray.T, re-quantised transposes, training GEMMs)
from .tile import (TransposeError, matmul, requantize_transposed,  # noqa: E402
                   training_gemms, transposed_format)
