"""The SoC's word bus: its signature and the register read multiplexer its slaves share."""

from amaranth import Array
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BusSignature", "word_select"]


class BusSignature(wiring.Signature):
    """A simple word bus, seen from the master: 32-bit words, word addresses.

    ``r_en`` with ``addr`` asks for a read; ``r_data`` holds the word a fixed number of
    cycles later (the read latency: 1 = the next cycle; the master is told the latency).
    ``w_en`` with ``addr`` and ``w_data`` writes a word. One access per cycle, never stalls.
    A slave's port is ``In(BusSignature(...))``.
    """

    def __init__(self, addr_width=30):
        super().__init__({
            "addr": Out(addr_width),
            "w_data": Out(32),
            "w_en": Out(1),
            "r_en": Out(1),
            "r_data": In(32),
        })


def word_select(words, index, rbits=None):
    """The register words of a bus slave (``words``: word index -> value) as a multiplexer
    on the low ``rbits`` bits of ``index`` (default ``max(words).bit_length()``; 0 where no
    register sits); the caller checks that the higher bits are zero. Returns
    ``(value, rbits)``."""
    if rbits is None:
        rbits = max(1, max(words).bit_length())
    table = [0] * (1 << rbits)
    for i, v in words.items():
        table[i] = v
    return Array(table)[index[:rbits]], rbits
