"""Memories: banked scratchpads, stream FIFOs and skid buffers, tile address generators."""

from .scratchpad import Scratchpad, code_shape, scale_shape
from .fifo import StreamFIFO, SkidBuffer
from .addrgen import TileAddressGenerator

__all__ = ["Scratchpad", "code_shape", "scale_shape", "StreamFIFO", "SkidBuffer",
           "TileAddressGenerator"]
