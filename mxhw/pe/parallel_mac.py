"""Bit-parallel integer MAC datapath: the reference the bit-serial engine is compared with.

Golden twin: :func:`mxhw.golden.bitserial.pe_dot` (at ``nbits = w_width``).
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.accum import accumulate, accumulator_width
from ..lib.params import check_int, clog2
from ..lib.trees import sum_tree

__all__ = ["ParallelMAC"]


class ParallelMAC(wiring.Component):
    """``lanes`` signed ``act_width`` x ``w_width`` multipliers, a balanced adder tree and
    an accumulator: ``lanes`` MACs per cycle, bit-parallel.

    An *operation* is a sequence of beats ending with a beat whose ``last`` is set; its
    result is ``sum(a[l] * w[l])`` over all lanes of all its beats, wrapped to
    ``acc_width`` bits (two's complement), as the bit-serial PE's (:class:`BitSerialPE`)
    operation at a fixed precision of ``w_width`` bits. This is the bit-parallel INT8 x
    INT8 datapath ``python -m mxhw.bench bitserial`` compares the bit-serial engine with
    (same interface shape, same accumulator width, no run-time precision).

    Pipeline (every stage registered): the products (``lanes`` x ``act_width + w_width``
    bits), the adder tree's sum, then the accumulator, whose value is loaded into the
    output register at an operation's last beat (the accumulator restarts from 0).

    Parameters
    ----------
    lanes : int
        Multipliers (MACs per cycle), 1..1024.
    act_width : int
        Activation width (signed), 2..32.
    w_width : int
        Weight width (signed), 2..32.
    acc_width : int or None
        Result width (two's complement, wraps). Default
        ``act_width + w_width + clog2(lanes) + 8`` (exact for operations of up to 256
        beats); at least ``act_width + w_width + clog2(lanes)`` (one exact beat).

    Members
    -------
    i : In(stream.Signature(StructLayout{a: lanes x signed(act_width), w: lanes x
        signed(w_width), last: 1}))
    o : Out(stream.Signature(signed(acc_width)))

    Latency and throughput
    ----------------------
    One beat (``lanes`` MACs) per cycle. ``o.valid`` rises 2 clock edges after the edge at
    which an operation's last beat transfers (3 registers: products, sum, result). The
    whole pipeline stalls (``i.ready`` low) while a result waits in the output register
    for ``o.ready``; with ``o.ready`` held high it never stalls.

    Golden twin: ``golden.bitserial.pe_dot(acts, weights, w_width, acc_width)``.

    Raises
    ------
    TypeError
        A parameter is not an integer.
    ValueError
        A parameter is out of range, or ``acc_width`` cannot hold one beat exactly.
    """

    def __init__(self, lanes=1, act_width=8, w_width=8, acc_width=None):
        check_int("lanes", lanes, 1, 1024)
        check_int("act_width", act_width, 2, 32)
        check_int("w_width", w_width, 2, 32)
        acc_width = accumulator_width(acc_width, act_width + w_width + clog2(lanes),
                                      "act_width + w_width + clog2(lanes)")
        self._lanes, self._act_width, self._w_width = lanes, act_width, w_width
        self._acc_width = acc_width
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(signed(act_width), lanes),
                "w": data.ArrayLayout(signed(w_width), lanes),
                "last": 1,
            }))),
            "o": Out(stream.Signature(signed(acc_width))),
        })

    lanes = property(lambda self: self._lanes)
    act_width = property(lambda self: self._act_width)
    w_width = property(lambda self: self._w_width)
    acc_width = property(lambda self: self._acc_width)

    def elaborate(self, platform):
        m = Module()
        L, A, W = self._lanes, self._act_width, self._w_width

        # the pipeline advances unless a result waits in the output register
        adv = Signal()
        m.d.comb += [adv.eq(~self.o.valid | self.o.ready), self.i.ready.eq(adv)]

        prod = [Signal(signed(A + W), name=f"prod{l}") for l in range(L)]
        p_valid, p_last = Signal(), Signal()
        s = Signal(signed(A + W + clog2(L)))
        s_valid, s_last = Signal(), Signal()
        acc = Signal(signed(self._acc_width))

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(adv):
            m.d.sync += [p_valid.eq(self.i.valid), p_last.eq(self.i.payload.last),
                         s_valid.eq(p_valid), s_last.eq(p_last),
                         s.eq(sum_tree(m, prod, "tree"))]
            m.d.sync += [prod[l].eq(self.i.payload.a[l] * self.i.payload.w[l])
                         for l in range(L)]
            with m.If(s_valid):
                accumulate(m, acc, s, s_last, self.o)
        return m
