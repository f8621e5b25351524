"""Accumulating stream units: the result-width rule and the control that the bit-serial
units (:class:`~mxhw.pe.BitSerialPE`, :class:`~mxhw.dequant.BitSerialDequant`) and the
bit-parallel :class:`~mxhw.pe.ParallelMAC` share.

An *operation* is a sequence of input beats ending with one whose ``last`` is set; its
accumulated result goes out on a ``stream`` ``o`` and the accumulator restarts from 0.
"""

from .params import check_int

__all__ = ["accumulator_width", "serial_advance", "accumulate"]


def accumulator_width(acc_width, need, need_text, slack=8):
    """The result width: ``acc_width``, or ``need + slack`` for ``None``; ``acc_width`` must
    be an integer in 2..128 and at least ``need`` (one exact beat, ``need_text`` says how
    it is formed)."""
    if acc_width is None:
        return need + slack
    check_int("acc_width", acc_width, 2, 128)
    if acc_width < need:
        raise ValueError(f"acc_width must be >= {need_text} = {need} (one exact beat), "
                         f"not {acc_width}")
    return acc_width


def serial_advance(m, i, o, busy, final, last):
    """Handshake of a unit that spends several cycles on each beat: ``busy`` (a beat is in
    work), ``final`` (this is its last cycle), ``last`` (it ends an operation). The next
    beat is taken in the final cycle unless a finished result still waits on ``o``.
    Clears ``o.valid`` once taken; returns ``advance``, the unit works this cycle."""
    can_finish = ~last | ~o.valid | o.ready
    m.d.comb += i.ready.eq(~busy | (final & can_finish))
    with m.If(o.ready):
        m.d.sync += o.valid.eq(0)
    return busy & (~final | can_finish)


def accumulate(m, acc, value, last, o, on_last=()):
    """``acc += value``; if ``last``, the sum goes out on ``o`` instead (``o.valid`` set),
    ``acc`` restarts from 0 and the statements ``on_last`` run (all synchronous, under the
    caller's conditions)."""
    acc_new = acc + value
    with m.If(last):
        m.d.sync += [o.payload.eq(acc_new), o.valid.eq(1), acc.eq(0), *on_last]
    with m.Else():
        m.d.sync += acc.eq(acc_new)
