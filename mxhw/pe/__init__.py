"""Processing elements: exact element multipliers, the MX dot-product unit."""

from .multiplier import ElementMultiplier, product_width
from .dot import MXDotProduct

__all__ = ["ElementMultiplier", "product_width", "MXDotProduct"]
