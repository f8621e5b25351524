"""Processing elements: exact element multipliers, the MX dot-product unit, the bit-serial
PE with its weight mapper, the bit-serial GEMV engine, and the bit-parallel integer MAC
datapath it is compared with."""

from .multiplier import ElementMultiplier, product_width
from .dot import MXDotProduct
from .bitserial import BitSerialPE, WeightMapper
from .bitserial_engine import BitSerialGEMV
from .parallel_mac import ParallelMAC

__all__ = ["ElementMultiplier", "product_width", "MXDotProduct",
           "BitSerialPE", "WeightMapper", "BitSerialGEMV", "ParallelMAC"]
