"""Harnesses of the bit-serial units (:class:`~mxhw.pe.BitSerialPE`,
:class:`~mxhw.dequant.BitSerialDequant`) against their function, through their
multi-cycle stream protocol.

The environment offers any beats (every payload bit free) with any timing, holding a beat
while it is not taken (assumed); ``o.ready`` is free (``latency`` proofs: always high).
The reference is a scoreboard written from golden's definitions
(``golden.bitserial.pe_dot`` / ``dequant``): on every input transfer it adds the beat's
exact contribution to a running sum (PE: ``sum_l a[l] * w[l]`` with ``w[l]`` the low
``prec`` bits as two's complement, ``prec`` latched from the operation's first beat and
clamped to ``[2, max_wbits]``; dequantiser: ``sum * scale``); on a ``last`` beat the sum,
wrapped to ``acc_width`` bits, joins a queue of expected results. Asserted: every output
transfer is the queue's head (none lost, none invented, in order), ``o`` holds valid and
payload while not ready, and (``latency``) each result appears exactly the documented
number of cycles after its last beat's transfer.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Module, Mux, Signal, signed

from .base import Harness

__all__ = ["SerialContract"]


class SerialContract(Harness):
    """``dut`` (a BitSerialPE or BitSerialDequant) against the scoreboard above.

    ``latency``: if true, ``o.ready`` is held high and each result must be valid from the
    documented clock edge after its last beat's transfer on: the ``prec + 1``-th for the
    PE (a beat's product sum is registered before it is accumulated), the
    ``scale_width``-th for the dequantiser."""

    QUEUE = 2       # results in flight at most: one waiting on o, one being computed

    def __init__(self, dut, latency=False):
        super().__init__()
        self.dut, self.latency = dut, latency
        self.i_valid = Signal()
        self.payload = Signal(len(dut.i.payload.as_value()))
        self.o_ready = Signal()

    def inputs(self):
        return [self.i_valid, self.payload, self.o_ready]

    def _contribution(self, m, beat, first, prec_reg):
        """The beat's exact term, its operation's precision (PE) and the clock edges from
        the last beat's transfer to the result."""
        from ..pe import BitSerialPE
        dut = self.dut
        if isinstance(dut, BitSerialPE):
            W = dut.max_wbits
            clamped = Mux(beat.prec < 2, 2, Mux(beat.prec > W, W, beat.prec))
            prec = Signal(range(W + 1), name="ref_prec")
            m.d.comb += prec.eq(Mux(first, clamped, prec_reg))
            terms = []
            for lane in range(dut.lanes):
                w = beat.w[lane].as_unsigned()
                # the low `prec` bits as two's complement: shift the sign bit to the top
                # and back (arithmetic)
                ws = Signal(signed(W), name=f"ref_w{lane}")
                with m.Switch(prec):
                    for p in range(2, W + 1):
                        with m.Case(p):
                            m.d.comb += ws.eq(w[:p].as_signed())
                terms.append(beat.a[lane] * ws)
            term = terms[0]
            for t in terms[1:]:
                term = term + t
            return term, prec, prec + 1
        return beat.sum * beat.scale, 0, dut.scale_width

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        m.submodules.dut = dut = self.dut
        acc_w = dut.acc_width
        m.d.comb += [dut.i.valid.eq(self.i_valid), dut.i.payload.eq(self.payload),
                     dut.o.ready.eq(1 if self.latency else self.o_ready)]
        i_fire = dut.i.valid & dut.i.ready
        o_fire = dut.o.valid & dut.o.ready
        beat = dut.i.payload

        # the environment holds an offered beat until it is taken
        i_wait = Signal()
        held = Signal.like(self.payload)
        m.d.sync += [i_wait.eq(dut.i.valid & ~dut.i.ready), held.eq(self.payload)]
        with m.If(i_wait):
            m.d.comb += [Assume(self.i_valid), Assume(self.payload == held)]

        # the scoreboard
        first = Signal(init=1)          # the next beat starts an operation
        prec_reg = Signal(8)
        run = Signal(signed(acc_w))     # this operation's sum so far (wrapped)
        term, prec, edges = self._contribution(m, beat, first, prec_reg)
        total = Signal(signed(acc_w))
        m.d.comb += total.eq(run + term)
        q = [Signal(signed(acc_w), name=f"ref_q{n}") for n in range(self.QUEUE)]
        qdue = [Signal(8, name=f"ref_due{n}") for n in range(self.QUEUE)]
        count = Signal(range(self.QUEUE + 2))
        now = Signal(8)
        m.d.sync += now.eq(now + 1)
        push = i_fire & beat.last
        with m.If(i_fire):
            m.d.sync += [run.eq(Mux(beat.last, 0, total)), first.eq(beat.last)]
            with m.If(first):
                m.d.sync += prec_reg.eq(prec)
        # queue: pop the head on o_fire, push the new result behind what stays
        stay = count - o_fire
        with m.If(o_fire):
            for n in range(self.QUEUE - 1):
                m.d.sync += [q[n].eq(q[n + 1]), qdue[n].eq(qdue[n + 1])]
        with m.If(push):
            with m.Switch(stay):
                for n in range(self.QUEUE):
                    with m.Case(n):
                        m.d.sync += [q[n].eq(total), qdue[n].eq(now + edges + 1)]
        m.d.sync += count.eq(stay + push)
        m.d.comb += Assert(count <= self.QUEUE, "at most two results in flight")

        # the block
        with m.If(dut.o.valid):
            m.d.comb += [Assert(count != 0, "no result without an operation"),
                         Assert(dut.o.payload == q[0], "result == sum of a*w (wrapped)")]
        o_wait = Signal()
        o_prev = Signal.like(dut.o.payload)
        m.d.sync += [o_wait.eq(dut.o.valid & ~dut.o.ready), o_prev.eq(dut.o.payload)]
        with m.If(o_wait):
            m.d.comb += [Assert(dut.o.valid, "o.valid held while not ready"),
                         Assert(dut.o.payload == o_prev, "o.payload held while not ready")]
        if self.latency:
            with m.If(count != 0):
                m.d.comb += Assert(dut.o.valid == (now == qdue[0]),
                                   "result at the documented edge after its last beat's transfer")
        return m
