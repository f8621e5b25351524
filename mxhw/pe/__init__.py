"""Processing elements: exact element multipliers, the MX dot-product unit, the bit-serial
PE with its weight mapper, and the bit-serial GEMV engine."""

from .multiplier import ElementMultiplier, product_width
from .dot import MXDotProduct
from .bitserial import BitSerialPE, WeightMapper
from .bitserial_engine import BitSerialGEMV

__all__ = ["ElementMultiplier", "product_width", "MXDotProduct",
           "BitSerialPE", "WeightMapper", "BitSerialGEMV"]
