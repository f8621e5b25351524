"""Packing stream payloads into rows of 32-bit words for the model's C loops, and back."""

import numpy as np
from amaranth.hdl import Const, ShapeCastable

__all__ = ["pack_beats", "unpack_beats"]


def pack_beats(payloads, p, raw):
    """Payloads (ints, ``ctx.set``-form values, or a NumPy array: 1-D for ports up to 64
    bits, ``(n, words)`` uint32 rows) as an ``(n, words)`` uint32 array of port ``p``'s
    bits."""
    words, mask = p.words, (1 << p.width) - 1
    if isinstance(payloads, np.ndarray):
        if payloads.ndim == 2:
            if payloads.shape[1] != words:
                raise ValueError(f"{p.name!r} takes {words} 32-bit words per beat, "
                                 f"the array has {payloads.shape[1]}")
            return np.ascontiguousarray(payloads, dtype=np.uint32)
        if words <= 2:
            v = payloads.astype(np.int64).astype(np.uint64) & np.uint64(mask)
            out = np.zeros((len(v), words), dtype=np.uint32)
            out[:, 0] = (v & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            if words == 2:
                out[:, 1] = (v >> np.uint64(32)).astype(np.uint32)
            return out
        payloads = [int(x) for x in payloads]
    shape = p.shape if isinstance(p.shape, ShapeCastable) and not raw else None
    ints = []
    for v in payloads:
        if shape is not None and type(v) is not int:
            v = Const.cast(shape.const(v)).value
        ints.append(int(v) & mask)
    if words == 1:
        return np.array(ints, dtype=np.uint32).reshape(-1, 1)
    buf = b"".join(v.to_bytes(4 * words, "little") for v in ints)
    return np.frombuffer(buf, dtype="<u4").reshape(-1, words).astype(np.uint32)


def unpack_beats(data, p, raw):
    """Rows of port ``p``'s bits -> ints (signed ports sign-extended), or ``ctx.get``
    form."""
    if p.words == 1:
        vals = data[:, 0].tolist()
    else:
        blob, n = data.astype("<u4").tobytes(), 4 * p.words
        vals = [int.from_bytes(blob[k:k + n], "little") for k in range(0, len(blob), n)]
    if p.signed:
        top = 1 << (p.width - 1)
        vals = [v - (top << 1) if v & top else v for v in vals]
    if not raw and isinstance(p.shape, ShapeCastable):
        vals = [p.shape.from_bits(v) for v in vals]
    return vals
