"""Systolic arrays of MX PEs (output- and weight-stationary), their PEs (bit-parallel and
bit-serial) and the GEMM engine."""

from .pe import MXMacPE
from .bitserial import BitSerialMXMacPE
from .array import SystolicArray
from .engine import GemmEngine

__all__ = ["MXMacPE", "BitSerialMXMacPE", "SystolicArray", "GemmEngine"]
