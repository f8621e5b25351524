"""Systolic arrays of MX PEs (output-stationary), their PE and the GEMM engine."""

from .pe import MXMacPE
from .array import SystolicArray

__all__ = ["MXMacPE", "SystolicArray"]
