"""Systolic arrays of MX PEs (output- and weight-stationary), their PE and the GEMM engine."""

from .pe import MXMacPE
from .array import SystolicArray
from .engine import GemmEngine

__all__ = ["MXMacPE", "SystolicArray", "GemmEngine"]
