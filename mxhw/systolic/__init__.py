"""Systolic arrays of MX PEs (output- and weight-stationary), their PEs (bit-parallel and
bit-serial), the row-shared accumulator and the GEMM engine. The design:
``docs/systolic.md``."""

from .grid import array_block_format
from .pe import MXBlockSumPE, MXMacPE
from .bitserial import BitSerialMXMacPE
from .rowacc import RowAccumulator
from .array import DATAFLOWS, DEFAULT_PIPELINE, PE_TYPES, SystolicArray
from .engine import GemmEngine
from .tilearray import TileArray
from .scalable_pe import ScalableBlockSumPE, ScalablePE
from .scalable import DEFAULT_MODES, ScalableArray

__all__ = ["MXMacPE", "MXBlockSumPE", "RowAccumulator", "BitSerialMXMacPE",
           "SystolicArray", "GemmEngine", "TileArray", "DATAFLOWS", "DEFAULT_PIPELINE",
           "PE_TYPES", "array_block_format", "ScalableArray", "ScalablePE", "ScalableBlockSumPE",
           "DEFAULT_MODES"]
