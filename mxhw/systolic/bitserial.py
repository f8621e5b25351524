"""Bit-serial MX multiply-accumulate PE of the output-stationary array.

The weight (the B element) reaches the PE one bit per cycle; the activation (the A element)
is held in parallel. Block sums, scales and accumulation are those of :class:`MXMacPE`
(its helpers :func:`~mxhw.systolic.grid.scale_code_sum` and
:func:`~mxhw.systolic.grid.accumulate_blocks`), so the array matches golden ``fixed`` accumulation
bit for bit.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib.wiring import In

from ..formats import code_bits, moded_code, operand_element
from ..pe.multiplier import product_width
from ..lib.signals import stage
from .grid import (SERIAL_BITS_MAX, AccumulatingPE, accumulate_blocks, array_block_format,
                   block_sum_width, check_acc, check_serial_format, fixed_form, mode_port,
                   running_block_sum, scale_code_sum, scale_nan, scale_offset, serial_bits)

# (the serial-weight helpers live in :mod:`.grid`; re-exported here, where the bench and
# the tests look for them)
__all__ = ["BitSerialMXMacPE", "serial_bits", "check_serial_format", "SERIAL_BITS_MAX",
           "fixed_form"]

class BitSerialMXMacPE(AccumulatingPE):
    """Bit-serial MX multiply-accumulate: the activation in parallel, the weight one bit per
    cycle, ``p`` cycles per element pair.

    The weight (element of ``fmt_b``) is streamed as its exact signed fixed-point form
    ``w = int_table[code]`` (``value = w * 2**lsb_exp``; FP4/FP6/FP8 and INT8 alike, no
    rounding; MXSF by its block's mode, applied at the array's edge), ``p =
    serial_bits(operand_element(fmt_b))`` bits in two's complement, MSB (the sign)
    first: ``golden.bitserial.serial_bits(w, p)``, the "two's complement view" (b) of
    :mod:`mxhw.golden.bitserial`'s unified representation. The activation (element of
    ``fmt_a``) is decoded in the PE to its fixed-point integer ``x`` and the product is
    formed by shift-and-add, ``q = -x·bit`` on the first (sign) bit and ``q = 2q + x·bit``
    on the others: after ``p`` bits ``q = x * w`` exactly (every partial ``q`` lies
    between 0 and ``x * w``'s extremes, so ``q`` is as wide as the bit-parallel product).
    On a step's final bit ``q`` joins the block's exact sum ``S``; the rest is
    :class:`~mxhw.systolic.MXMacPE`'s: at a block end ``S`` is put on the accumulator grid
    (:func:`~mxhw.systolic.grid.block_to_grid`) and added with saturation or wrap-around;
    on the tile's last step the accumulator moves to ``result``. A NaN scale or a NaN/Inf
    element (either operand) makes the result ``special``.

    Register stages (``pipeline``, cumulative, none of them stalls):

    ====  ==========================================================================
    >= 1  the inputs: the decoded activation, the weight bit, the control flags, the
          scales' shift amount and NaN flag
    >= 2  at a block end: the finished block sum, shift direction and amount, NaN flag
    >= 3  after the barrel shift
    >= 4  after rounding and clamping, before the accumulator adder
    ====  ==========================================================================

    Parameters
    ----------
    fmt_a, fmt_b : BlockFormat
        Operand block formats (validated by the array); ``fmt_b``'s element is the serial
        weight (:func:`check_serial_format`).
    acc : golden.arith.Accumulation
        ``fixed`` accumulation only.
    pipeline : int
        Register stages, 0..4; default 0.

    Members
    -------
    a : In(unsigned(bits)), a_scale : In(unsigned(scale bits))
        Activation code and its block's scale code, held over the step's ``p`` cycles.
    a_mode : In(unsigned(mode bits))
        Only when ``fmt_a`` has several element modes (MXSF): the activation's block mode.
    b_bit : In(1)
        This cycle's weight bit (MSB first).
    b_nonfinite : In(1)
        The weight code is NaN/Inf (read on the step's final bit).
    b_scale : In(unsigned(scale bits))
        The weight's block scale code (read on the final bit of the block's last step).
    valid, first, final : In(1)
        A bit cycle; the step's first (sign) bit; its last bit (the ``p``-th bit cycle).
        Idle cycles (``valid`` low) may fall anywhere; the array sends a step's bits
        back to back.
    block_end, last : In(1)
        The step is the last of its block; the last of the tile (a block end); read on the
        final bit.
    result : Out(signed(acc.width)), special : Out(1)
        Registered, updated :attr:`latency` cycles after the final bit of a tile's last
        step.

    Latency ``1 + pipeline`` cycles from the final bit of the tile's last step to
    ``result``; throughput one element pair per ``p`` cycles (:attr:`serial_bits`),
    steps back to back. Golden twin: :func:`mxhw.golden.arith.gemm` with ``fixed``
    accumulation (one output element); the serial product is
    :func:`mxhw.golden.bitserial.pe_dot_serial` (one lane, MSB first).

    Raises
    ------
    TypeError, ValueError
        ``pipeline`` not an integer in 0..4; ``acc`` not ``fixed``; ``fmt_b``'s serial
        form wider than :data:`SERIAL_BITS_MAX`.
    """

    def __init__(self, fmt_a, fmt_b, acc, pipeline=0):
        fmt_a, fmt_b = array_block_format(fmt_a, "fmt_a"), array_block_format(fmt_b, "fmt_b")
        check_acc(acc)
        if acc.mode != "fixed":
            raise ValueError(f"the bit-serial PE implements fixed-point accumulation only, "
                             f"not {acc.mode!r}")
        self._p = check_serial_format(fmt_b)
        super().__init__(fmt_a, fmt_b, acc, pipeline, {
            "a": In(unsigned(code_bits(fmt_a))),
            "a_scale": In(unsigned(fmt_a.scale.bits)),
            **({"a_mode": In(mode_port(fmt_a))} if fmt_a.mode_bits else {}),
            "b_bit": In(1),
            "b_nonfinite": In(1),
            "b_scale": In(unsigned(fmt_b.scale.bits)),
            "valid": In(1),
            "first": In(1),
            "final": In(1),
            "block_end": In(1),
            "last": In(1),
        })

    serial_bits = property(lambda self: self._p,
                           doc="Weight bits per element, i.e. cycles per K step.")

    def elaborate(self, platform):
        m = Module()
        fa, fb, acc, P = self._fmt_a, self._fmt_b, self._acc, self._pipeline
        ea, eb = operand_element(fa), operand_element(fb)
        x, a_nf = fixed_form(m, ea, moded_code(fa, self.a, getattr(self, "a_mode", None)))
        lsb_exp = ea.lsb_exp + eb.lsb_exp
        ts = scale_code_sum(m, fa, fb, self.a_scale, self.b_scale)
        nan, nf = Signal(), Signal()
        m.d.comb += [nan.eq(scale_nan(fa, self.a_scale) | scale_nan(fb, self.b_scale)),
                     nf.eq(a_nf | self.b_nonfinite)]
        valid, first, final, end, last, x, bit, nf, ts, nan = (
            stage(m, s_, P >= 1, "m")
            for s_ in (self.valid, self.first, self.final, self.block_end, self.last, x,
                       self.b_bit, nf, ts, nan))

        # shift-and-add, MSB first: the sign bit subtracts
        q = Signal(signed(product_width(ea, eb)))
        t = Signal(signed(len(x) + 1))
        m.d.comb += t.eq(Mux(bit, x, 0))
        q_new = Signal.like(q)
        m.d.comb += q_new.eq(Mux(first, -t, (q << 1) + t))

        # the exact block sum of the finished steps
        s_new, spec_new, advance = running_block_sum(
            m, block_sum_width(ea, eb, self._k), q_new, nf, end, nan)
        with m.If(valid):
            m.d.sync += q.eq(q_new)
            with m.If(final):
                advance(end, last)

        ev = Signal()                              # a block ends: its sum moves on
        m.d.comb += ev.eq(valid & final & end)
        accumulate_blocks(m, acc, s_new, ts, scale_offset(fa, fb, acc, lsb_exp), ev, last,
                          spec_new, P - 1, self.result, self.special)
        return m
