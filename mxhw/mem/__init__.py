"""Memories: block RAMs (with the output register on ECP5), banked scratchpads, stream
FIFOs and skid buffers, tile address generators, tile-format operand stores read in either orientation."""

from .scratchpad import Scratchpad, code_shape, scale_shape
from .fifo import StreamFIFO, SkidBuffer
from .addrgen import TileAddressGenerator
from .bram import BlockRAM, dp16kd_geometry
from .tilestore import TileStore

__all__ = ["Scratchpad", "code_shape", "scale_shape", "StreamFIFO", "SkidBuffer",
           "TileAddressGenerator", "BlockRAM", "dp16kd_geometry", "TileStore"]
