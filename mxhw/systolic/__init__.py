"""Systolic arrays of MX PEs (output- and weight-stationary), their PEs (bit-parallel and
bit-serial), the row-shared accumulator and the GEMM engine."""

from .pe import MXBlockSumPE, MXMacPE
from .bitserial import BitSerialMXMacPE
from .rowacc import RowAccumulator
from .array import SystolicArray
from .engine import GemmEngine

__all__ = ["MXMacPE", "MXBlockSumPE", "RowAccumulator", "BitSerialMXMacPE",
           "SystolicArray", "GemmEngine"]
