"""Bit-serial PE (BitMoD-style) and the weight-code mapper that feeds it.

Golden twins: :mod:`mxhw.golden.bitserial` (``pe_dot``, ``weight_ints``).
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.accum import accumulate, accumulator_width, serial_advance
from ..lib.params import check_bool, check_int, clog2
from ..lib.trees import sum_tree
from .weights import check_weight_types, is_twos_complement

__all__ = ["BitSerialPE", "WeightMapper"]


class BitSerialPE(wiring.Component):
    """Bit-serial PE: ``lanes`` parallel activations times ``lanes`` weights streamed one
    bit per cycle, exact shift-and-add accumulation.

    An *operation* is a sequence of beats ending with a beat whose ``last`` is set; its
    result is ``sum(a[l] * w[l])`` over all lanes of all its beats. Each beat's weights are
    ``prec``-bit two's-complement integers (the low ``prec`` bits of ``w[l]``; higher bits
    are ignored); the PE streams them one bit per cycle (MSB or LSB first, a parameter)
    from an internal shift register and adds the gated activations:
    MSB first ``p = 2 p + t`` (the sign bit, first, subtracts), LSB first
    ``p = p + (t << k)`` (the sign bit, last, subtracts), with
    ``t = sum of a[l] whose weight bit is 1``.

    ``prec`` (the weight precision, 2..``max_wbits``) is a run-time input, latched from the
    first beat of each operation (clamped to [2, ``max_wbits``]); the ``prec`` field of the
    other beats is ignored. One PE thus runs 3-, 4-, 8-bit weights without re-synthesis.

    Parameters
    ----------
    act_width : int
        Activation width (signed): INT8, or an aligner's signed fixed-point output.
    max_wbits : int
        Widest weight precision (>= 2).
    lanes : int
        Weights per cycle (bit-serial across a vector).
    msb_first : bool
    acc_width : int or None
        Result width (two's complement, wraps). Default
        ``act_width + max_wbits + clog2(lanes) + 8``: exact for operations of up to 512
        beats at any precision.

    Members
    -------
    i : In(stream.Signature(StructLayout{a: lanes x signed(act_width), w: lanes x
        signed(max_wbits), prec: unsigned, last: 1}))
    o : Out(stream.Signature(signed(acc_width)))

    Latency and throughput
    ----------------------
    A beat occupies the PE for ``prec`` cycles; the next beat is accepted in the cycle its
    predecessor's last bit is processed, so a steady stream runs at one beat (``lanes``
    MACs) per ``prec`` cycles: 3 cycles for 3-bit, 4 for 4-bit, 8 for 8-bit weights. The
    result register is loaded at the ``prec + 1``-th clock edge after the transfer of the
    operation's last beat (a beat's product sum is registered before it is accumulated),
    so for a ``B``-beat operation fed without gaps the result transfers ``B * prec + 2``
    edges after the first beat's transfer.
    The PE stalls (``i.ready`` low) only when a finished result is not yet taken.

    Golden twin: ``golden.bitserial.pe_dot`` (cycle-level: ``pe_dot_serial``).
    """

    def __init__(self, act_width=8, max_wbits=8, lanes=1, msb_first=True, acc_width=None):
        check_int("act_width", act_width, 2, 32)
        check_int("max_wbits", max_wbits, 2, 16)
        check_int("lanes", lanes, 1, 256)
        check_bool("msb_first", msb_first)
        acc_width = accumulator_width(acc_width, act_width + max_wbits + clog2(lanes),
                                      "act_width + max_wbits + clog2(lanes)")
        self._act_width, self._max_wbits, self._lanes = act_width, max_wbits, lanes
        self._msb_first, self._acc_width = msb_first, acc_width
        super().__init__({
            "i": In(stream.Signature(self.beat_layout(act_width, max_wbits, lanes))),
            "o": Out(stream.Signature(signed(acc_width))),
        })

    @staticmethod
    def beat_layout(act_width, max_wbits, lanes):
        """The input beat's payload layout."""
        return data.StructLayout({
            "a": data.ArrayLayout(signed(act_width), lanes),
            "w": data.ArrayLayout(signed(max_wbits), lanes),
            "prec": range(max_wbits + 1),
            "last": 1,
        })

    act_width = property(lambda self: self._act_width)
    max_wbits = property(lambda self: self._max_wbits)
    lanes = property(lambda self: self._lanes)
    msb_first = property(lambda self: self._msb_first)
    acc_width = property(lambda self: self._acc_width)

    def elaborate(self, platform):
        m = Module()
        L, W, A = self._lanes, self._max_wbits, self._act_width
        tw = A + clog2(L) + 1              # a lane sum, one spare bit for its negation
        pw = A + W + clog2(L)              # one beat's exact product sum

        busy = Signal()
        start = Signal(init=1)              # the next beat starts an operation
        # the latched precision, kept as prec - 1 and W - prec (no subtractor on the
        # paths from the state registers to `final` and to the weight load)
        prec_m1 = Signal(range(W), init=W - 1)
        prec_sh = Signal(range(W + 1), init=0)
        k = Signal(range(W))
        last = Signal()
        a_reg = Signal(data.ArrayLayout(signed(A), L))
        sreg = [Signal(W, name=f"sreg{l}") for l in range(L)]
        p = Signal(signed(pw))
        acc = Signal(signed(self._acc_width))
        pend = Signal()                     # pdone waits to be accumulated
        pend_last = Signal()
        pdone = Signal(signed(pw))

        # weight bits of this cycle, gated lane sum t
        bits = [s[W - 1] if self._msb_first else s[0] for s in sreg]
        t = Signal(signed(tw))
        # (a balanced tree: depth clog2(lanes) adders, not a chain of lanes - 1)
        m.d.comb += t.eq(sum_tree(m, [Mux(b, a_reg[l], 0) for l, b in enumerate(bits)],
                                  "lane_sum"))
        final = Signal()
        m.d.comb += final.eq(k == prec_m1)
        if self._msb_first:
            sign_cycle = k == 0
            p_next = Mux(sign_cycle, -t, (p << 1) + t)
        else:
            sign_cycle = final
            p_next = p + (Mux(sign_cycle, -t, t) << k)
        p_new = Signal(signed(pw))
        m.d.comb += p_new.eq(p_next)

        advance = serial_advance(m, self.i, self.o, busy, final, last)
        m.d.sync += pend.eq(0)                # (set again below by a final cycle)
        with m.If(advance):
            m.d.sync += [k.eq(k + 1), p.eq(p_new)]
            if self._msb_first:
                m.d.sync += [s.eq(s << 1) for s in sreg]
            else:
                m.d.sync += [s.eq(s >> 1) for s in sreg]
            with m.If(final):
                m.d.sync += [busy.eq(0), pend.eq(1), pend_last.eq(last), pdone.eq(p_new)]
                with m.If(last):
                    m.d.sync += start.eq(1)
        # a beat's product sum is added to the result one cycle after its last bit (a
        # register between the two carry chains); the next beat's last bit comes at least
        # two cycles later (prec >= 2), so the result is out before it may be finished
        with m.If(pend):
            accumulate(m, acc, pdone, pend_last, self.o)

        with m.If(self.i.valid & self.i.ready):
            beat = self.i.payload
            m.d.sync += [busy.eq(1), k.eq(0), p.eq(0), last.eq(beat.last), a_reg.eq(beat.a)]
            new_op = start | (busy & final & last)
            new_prec = Signal(range(W + 1))
            m.d.comb += new_prec.eq(Mux(beat.prec < 2, 2, Mux(beat.prec > W, W, beat.prec)))
            shamt = Signal(range(W + 1))
            m.d.comb += shamt.eq(Mux(new_op, W - new_prec, prec_sh))
            with m.If(new_op):
                m.d.sync += [prec_m1.eq(new_prec - 1), prec_sh.eq(W - new_prec), start.eq(0)]
            for l in range(L):
                w = beat.w[l].as_unsigned()
                if self._msb_first:
                    # align the precision's sign bit with the register's top bit
                    m.d.sync += sreg[l].eq((w << shamt)[:W])
                else:
                    m.d.sync += sreg[l].eq(w)
        return m


class WeightMapper(wiring.Component):
    """Weight code of a run-time-selected type -> the PE's signed serial form.

    A combinational look-up: ``w = ints[type][code]`` (``golden.bitserial.weight_ints``),
    for ``lanes`` codes sharing one type select. Codes narrower than ``code_bits`` use
    their low bits. Latency 0 (combinational), one mapping per lane per cycle.

    Parameters
    ----------
    types : sequence of str
        Weight type names from ``golden.bitserial.WEIGHT_TYPES``; ``sel`` indexes them.
    lanes : int
    out_width : int or None
        Output width (signed); default: the widest type's ``bits``.

    Members
    -------
    code : In(code_bits).array(lanes)
    sel : In(range(len(types)))
    w : Out(signed(out_width)).array(lanes)
    bits : Out(range(out_width + 1))   -- the selected type's serial precision

    Golden twin: ``golden.bitserial.weight_ints``.
    """

    def __init__(self, types, lanes=1, out_width=None):
        types, descs = check_weight_types(types)
        check_int("lanes", lanes, 1, 256)
        need = max(d.bits for d in descs)
        if out_width is None:
            out_width = need
        check_int("out_width", out_width, 2, 32)
        if out_width < need:
            raise ValueError(f"out_width must be >= {need} (the widest type's bits), "
                             f"not {out_width}")
        self._types, self._descs, self._lanes, self._out_width = types, descs, lanes, out_width
        self._code_bits = max(d.code_bits for d in descs)
        super().__init__({
            "code": In(self._code_bits).array(lanes),
            "sel": In(range(max(len(types), 2))),
            "w": Out(signed(out_width)).array(lanes),
            "bits": Out(range(out_width + 1)),
        })

    types = property(lambda self: self._types)
    lanes = property(lambda self: self._lanes)
    code_bits = property(lambda self: self._code_bits)
    out_width = property(lambda self: self._out_width)

    def elaborate(self, platform):
        m = Module()
        with m.Switch(self.sel):
            for i, d in enumerate(self._descs):
                with m.Case(i):
                    m.d.comb += self.bits.eq(d.bits)
                    if is_twos_complement(d):
                        # two's complement: a sign extension, no table
                        for l in range(self._lanes):
                            m.d.comb += self.w[l].eq(self.code[l][:d.code_bits].as_signed())
                        continue
                    for l in range(self._lanes):
                        with m.Switch(self.code[l][:d.code_bits]):
                            for c, v in enumerate(d.ints):
                                with m.Case(c):
                                    m.d.comb += self.w[l].eq(v)
        return m
