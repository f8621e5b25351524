"""CRC-16/CCITT-FALSE in gateware: the host link's parallel byte step.

Golden twin: :func:`mxhw.soc.protocol.crc16` (the host-side CRC, from which the
step's matrix is derived at elaboration).
"""

from amaranth import Cat, Signal

from .protocol import crc16

__all__ = ["crc16_step"]


def _crc16_matrix():
    """The byte step is linear over GF(2) in (crc, byte): for each new CRC bit, the masks
    of the old CRC bits and byte bits it is the parity of."""
    cols = [crc16(b"\0", 1 << i) for i in range(16)] + \
           [crc16(bytes([1 << i]), 0) for i in range(8)]
    return [(sum(1 << i for i in range(16) if cols[i] >> o & 1),
             sum(1 << i for i in range(8) if cols[16 + i] >> o & 1)) for o in range(16)]


def crc16_step(m, crc, byte, name="crc"):
    """Add logic to ``m`` computing CRC-16/CCITT-FALSE of one more ``byte``; returns the
    new CRC as a signal. Each new bit is the parity of its set of old CRC and byte bits
    (the step's GF(2) matrix): at most a dozen inputs per bit, two LUT levels, where the
    bit-serial form was eight."""
    out = Signal(16, name=f"{name}_next")
    for o, (mc, mb) in enumerate(_crc16_matrix()):
        bits = [crc[i] for i in range(16) if mc >> i & 1] + \
               [byte[i] for i in range(8) if mb >> i & 1]
        m.d.comb += out[o].eq(Cat(*bits).xor())
    return out
