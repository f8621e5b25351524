"""Systolic array of MX multiply-accumulate PEs, with input skew and output de-skew."""

from __future__ import annotations

import functools

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from .bitserial import BitSerialMXMacPE, check_serial_format, fixed_form
from ..formats import moded_code, operand_element
from .pe import (MXBlockSumPE, MXMacPE, acc_width, block_format, check_pipeline, clamp_acc,
                 delay_line, mode_port)
from .rowacc import RowAccumulator, one_hot_select, row_extra_stages
from .ws import elaborate_ws, ws_in_layout, ws_latency

__all__ = ["SystolicArray", "DATAFLOWS", "DEFAULT_PIPELINE", "PE_TYPES"]

DATAFLOWS = ("output_stationary", "weight_stationary")

#: Register stages of the default PE (see :class:`MXMacPE`).
DEFAULT_PIPELINE = 4

#: PE types the output-stationary array builds by name (``pe=...``): the bit-parallel
#: :class:`MXMacPE` (also ``pe=None``) and the bit-serial :class:`BitSerialMXMacPE`.
PE_TYPES = ("bitparallel", "bitserial")

#: Columns of the output buffer that share one copy of its control (load and shift
#: enables): the enables' fan-out is at most this many results, whatever the array size.
OUT_GROUP = 1

#: Rows the output stage holds: three let one row per cycle flow with the buffer's shift
#: decided a cycle ahead, without ``o.ready``.
OUT_STAGE = 3


def _is_bitserial(pe):
    """``pe`` builds :class:`BitSerialMXMacPE` (the class, or a ``functools.partial`` of it)."""
    return pe is BitSerialMXMacPE or (isinstance(pe, functools.partial)
                                      and pe.func is BitSerialMXMacPE)


def _check_pos_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be a positive integer, not {v!r}")
    if v < 1:
        raise ValueError(f"{name} must be a positive integer, not {v!r}")


def check_acc(acc):
    """Validate an accumulation for the hardware (``fixed`` or ``fp32``)."""
    if not isinstance(acc, golden.arith.Accumulation):
        raise TypeError(f"acc must be a golden.arith.Accumulation, not {acc!r}")
    if acc.mode not in ("fixed", "fp32"):
        raise ValueError(f"acc must be fixed-point or FP32 accumulation "
                         f"(golden.arith.fixed(...) or golden.arith.FP32); {acc.mode!r} is "
                         f"not implemented in hardware")


class SystolicArray(wiring.Component):
    """A ``rows x cols`` array of MX multiply-accumulate PEs computing ``C = A @ B``.

    **Output-stationary** (default): PE ``(i, j)`` accumulates ``C[i, j]``. Each input
    transfer on ``i`` is one step along K: column ``K`` of the A tile (``rows`` codes with
    their block scales) and row ``K`` of the B tile (``cols`` codes with their scales).
    The array skews the operands internally (row ``i`` delayed ``i`` cycles, column ``j``
    delayed ``j``); results are captured per PE when its last element arrives and leave
    as rows on ``o`` (the de-skew), row 0 first. Block boundaries are counted inside
    (every ``k`` transfers); ``last`` marks the final transfer of a tile and must fall on
    a block boundary (K a multiple of ``k``). A new tile may follow the last transfer at
    once.

    **Row-shared accumulation** (``shared_acc``, the default where it applies: bit-parallel
    PEs, ``fixed`` accumulation, ``cols <= k``): the PEs
    (:class:`~mxhw.systolic.pe.MXBlockSumPE`) keep only the element multiplier and the
    exact block sum; the scaling onto the accumulator grid
    (:func:`~mxhw.systolic.pe.block_to_grid`), the accumulator adder, the ``cols``
    accumulators and the results are one :class:`~mxhw.systolic.rowacc.RowAccumulator`
    per row. PE ``(i, j)`` ends a block one cycle after PE ``(i, j - 1)`` and a PE's blocks
    are ``k`` transfers apart, so with ``cols <= k`` a row ends at most one block per cycle,
    in column order, and one unit serves the row (see :mod:`mxhw.systolic.rowacc`). The
    results and ``special`` are those of the per-PE design (:class:`MXMacPE` in every PE,
    ``shared_acc=False``); from ``pipeline`` 2 up the latency is 2 cycles longer (a
    register on each side of the row-wide selection). The row units' results fill the
    output buffer's rows in place, one tile store where the per-PE design has two (its
    PEs' result registers and the buffer), so a tile's last transfer waits until the
    previous tile has left the buffer: tiles of at least ``latency + rows - 1`` transfers
    follow each other without a gap while ``o`` is ready (with the default pipeline: K =
    32 and up in an 8x8 array, 64 in a 16x16).

    **Weight-stationary** (``dataflow="weight_stationary"``, see :mod:`mxhw.systolic.ws`):
    PE ``(r, c)`` holds weight ``B[k0 + r, n0 + c]`` of a *pass*: up to ``rows``
    consecutive K elements of one MX block (a block of ``k`` takes ``ceil(k / rows)``
    passes; ``rows`` dividing ``k`` wastes none) for ``cols`` output columns. A pass
    streams ``depth`` activation rows ``A[m, k0:k0 + rows]`` (one per transfer, ``act``);
    the exact column sums go to per-column stages that keep, for each of the ``depth``
    rows, the block's exact sum and the accumulator (``fixed``: the fixed-point register;
    ``fp32``: float32 bits), apply the scales when a block ends and accumulate blocks in
    K order, as golden does. The output tile is
    ``depth x cols``; its last pass emits ``depth`` result rows on ``o``. The input
    transfer differs from the output-stationary one (see Members); the host's schedule
    comes from :func:`mxhw.systolic.driver.ws_beats`.

    Parameters
    ----------
    rows, cols : int
        Array shape, >= 1.
    fmt_a, fmt_b : str or BlockFormat
        Operand block formats (power-of-two scales, 1-D blocks, equal block size ``k``):
        e.g. ``"mxfp4"``, ``"mxint8"``, ``"mxfp8_e4m3"``, ``"mxint4"``, ``"mxsf"``; A and B
        may differ. **MXSF** (MX-SAFE: per block a mode, W = E2M5 or S = fp6_e3m2 in the
        low 6 bits) works in both dataflows, with every accumulation and PE type: the
        block's mode travels beside its scale (``a_mode`` / ``b_mode`` / ``w_mode``, see
        Members) and each PE decodes the code by it
        (:func:`~mxhw.formats.operand_element`); exact products sit on the finer grid of
        the two modes (``2**-5``), so block sums stay exact. A mode S code with a top bit
        set is reserved; golden decodes it as NaN, so its block makes the result NaN
        (``special``). ``mxsf_tile`` (2-D tiles) is rejected.
    dataflow : "output_stationary" or "weight_stationary"
    acc : golden.arith.Accumulation
        ``golden.arith.fixed(width, frac_bits, overflow, rounding)``: cross-block
        accumulation as golden's ``fixed`` mode; or ``golden.arith.FP32`` (both
        dataflows; not with the bit-serial PE): golden's ``fp32`` mode, each block's exact
        dot rounded once to float32 and added in float32 in K order, round to nearest
        even, results as float32 bits. Per-block sums are exact.
    pe : str, callable or None
        Output-stationary only. The PE type: ``"bitparallel"`` or None (default):
        :class:`MXMacPE` with ``pipeline``; ``"bitserial"``: :class:`BitSerialMXMacPE`
        with ``pipeline`` (also chosen by ``pe=BitSerialMXMacPE`` or a
        ``functools.partial`` of it), see *Bit-serial PEs* below; or a PE factory
        ``pe(fmt_a, fmt_b, acc)`` returning a component with the signature of
        :class:`MXMacPE` (with its ``a_mode`` / ``b_mode`` ports for MXSF operands; the
        hook for other PE types), whose ``latency`` attribute (1 if
        absent) gives the cycles from its last element to its result.
    pipeline : int
        Register stages, 0..4; default :data:`DEFAULT_PIPELINE` (4). Output-stationary:
        the stages of :class:`MXMacPE`. Weight-stationary: >= 1 registers each PE's
        product, the rest (up to 3) are the block-end stages of the column accumulators
        (``fixed``: :func:`~mxhw.systolic.pe.block_to_grid`; ``fp32``: before and after
        the block's float32 conversion, and the third inside it, see
        :mod:`mxhw.systolic.ws`); the latency is the same for both.
    depth : int or None
        Weight-stationary only: activation rows per pass (the output tile's height and
        the length of the column stages' ring buffers); default ``rows``. With
        ``depth >= rows`` the next pass's weights load during the current pass.
    shared_acc : bool or None
        Output-stationary: one block-to-accumulator datapath per row
        (:class:`~mxhw.systolic.rowacc.RowAccumulator`) instead of one per PE. None
        (default): wherever it applies (output-stationary, bit-parallel PE, ``fixed``
        accumulation, ``cols <= k``), else per PE; True: required (``ValueError`` saying
        why when it does not apply); False: per PE (:class:`MXMacPE`). Same results either
        way; the shared design's latency is 2 cycles longer from ``pipeline`` 2 up, and it
        holds one finished tile where the per-PE design holds two (see above: short tiles
        wait for the output).

    Members
    -------
    i : In(stream.Signature(in_layout))
        Output-stationary: ``StructLayout({"a": ArrayLayout(elem_a, rows), "a_scale":
        ArrayLayout(scale_a, rows), "b": ArrayLayout(elem_b, cols), "b_scale":
        ArrayLayout(scale_b, cols), "last": 1})``; an MXSF A adds ``"a_mode":
        ArrayLayout(1, rows)`` after ``a_scale``, an MXSF B ``"b_mode": ArrayLayout(1,
        cols)`` after ``b_scale`` (each row's / column's block mode, 0 = W, 1 = S; other
        formats have no mode fields). Weight-stationary:
        ``StructLayout({"a": ArrayLayout(elem_a, rows), "a_scale": scale_a, "w":
        ArrayLayout(elem_b, cols), "w_scale": ArrayLayout(scale_b, cols), "act": 1,
        "w_valid": 1, "block_first": 1, "block_end": 1, "tile_first": 1, "last": 1})``,
        an MXSF A adding ``"a_mode": 1`` after ``a_scale`` and an MXSF B ``"w_mode":
        ArrayLayout(1, cols)`` after ``w_scale`` (held with the weights in the PEs):
        ``act``: ``a``/``a_scale`` are an activation row of the current pass (``depth``
        of them per pass; the first of a pass swaps in the weights loaded since the
        previous pass's first); ``w_valid``: ``w``/``w_scale`` are the next weight row
        for the shadow registers (rows ``0 .. rows-1`` in order, ``rows`` per pass, loaded
        after the previous pass's first activation); the pass flags, constant over a
        pass's activation transfers: it starts a block, ends a block, belongs to the
        tile's first block, is the tile's last pass.
    o : Out(stream.Signature(StructLayout({"data": ArrayLayout(signed(width), cols),
        "special": ArrayLayout(1, cols)})))
        ``rows`` (weight-stationary: ``depth``) transfers per tile; ``data *
        2**-frac_bits`` is the result (``fp32``: ``data`` holds float32 bits, width 32),
        ``special`` marks NaN (golden gives NaN).

    Latency (:attr:`latency`): output-stationary, the first result row is valid ``rows +
    cols + pe_latency + 1`` cycles after the tile's last input transfer (the 1 is the
    output stage, a three-row queue that keeps ``o.ready`` away from the result buffer's
    control; ``o.payload`` is its head, a 3:1 multiplexer of its registers by a one-hot
    read pointer, and ``o.valid`` a flip-flop; ``pe_latency = 1 + pipeline`` for the
    default PE, with shared accumulators + 3 from ``pipeline`` 2 up and + 1 below, :func:`~mxhw.systolic.rowacc.row_extra_stages`); weight-stationary, a
    result row is valid ``rows + cols + pipeline + 3`` cycles after its last-pass
    activation transfer. Throughput: one transfer per cycle (``rows*cols`` MACs per cycle)
    while ``o`` drains at least one row per cycle. Output-stationary: tiles at least
    ``rows`` transfers long; per-PE accumulation: ``i.ready`` holds off a tile's last
    transfer while the previous tile's results still occupy both result stages (a
    finished tile moves into the output buffer in the cycle after the buffer was found
    empty, so a tile that waits for the buffer moves one cycle after its last row left);
    row-shared accumulation: while the previous tile has rows in the output buffer (tiles
    of at least ``latency + rows - 1`` transfers: no gap). Weight-stationary: ``i.ready``
    holds off a last-pass activation while the output queue (``latency + 2`` rows) has
    no room reserved for it.

    **Bit-serial PEs** (``pe="bitserial"``, output-stationary, ``fixed`` accumulation):
    each PE multiplies its activation (A, in parallel) by the weight (B) one weight bit per
    cycle. The edge turns each B code into its exact signed fixed-point integer
    (``int_table``: MXINT8 directly, FP4/FP6/FP8 without rounding) and shifts it out MSB
    first, ``p`` = :attr:`step_cycles` bits (:func:`~mxhw.systolic.bitserial.serial_bits`
    of ``fmt_b``: MXFP4 5, MXFP6 E2M3 7, E3M2 10, MXFP8 E4M3 19, E5M2 33, MXINT8 8);
    the bits travel down the columns, one wire between PEs (beside the element's NaN/Inf
    flag and the block scale), the activations and the step's control along the rows,
    skewed as above. Each input transfer is held for ``p`` cycles: ``i.ready`` is low
    for ``p - 1`` cycles after a transfer and rises in the cycle of its last bit, so the
    array takes one K step per ``p`` cycles (``rows*cols`` MACs per ``p`` cycles), tiles
    back to back.
    Latency ``rows + cols + pe_latency + p`` cycles (``pe_latency = 1 + pipeline``)
    from a tile's last transfer to its first result row. The block sums, scales and
    accumulation are :class:`MXMacPE`'s; the results equal golden's bit for bit.

    Golden twin: :func:`mxhw.golden.arith.gemm` with the same ``acc``.

    With MXSF weights (B) the serial form is the exact integer of either mode on the
    ``2**-5`` grid (11 bits: 11 cycles per K step), made at the edge from the code and
    ``b_mode``; MXSF activations are decoded by ``a_mode`` in the PEs.

    Raises
    ------
    TypeError, ValueError
        Bad ``rows``/``cols``, formats (2-D blocks such as ``mxsf_tile``, non-power-of-two
        scales, unequal block sizes), ``dataflow``, ``acc``, ``pe``, ``pipeline``,
        ``depth``, ``shared_acc`` (not None/True/False; True with the weight-stationary
        dataflow, ``fp32`` accumulation, a bit-serial PE or a PE factory, or ``cols >
        k``); a bit-serial PE with ``fp32`` accumulation, or with a ``fmt_b`` whose
        fixed-point elements exceed :data:`~mxhw.systolic.bitserial.SERIAL_BITS_MAX` bits.
    """

    def __init__(self, rows, cols, fmt_a, fmt_b, dataflow="output_stationary",
                 acc=None, pe=None, pipeline=DEFAULT_PIPELINE, depth=None,
                 shared_acc=None):
        _check_pos_int("rows", rows)
        _check_pos_int("cols", cols)
        fmt_a = block_format(fmt_a, "fmt_a")
        fmt_b = block_format(fmt_b, "fmt_b")
        if fmt_a.block_size != fmt_b.block_size:
            raise ValueError(f"fmt_a and fmt_b block sizes differ "
                             f"({fmt_a.block_size} vs {fmt_b.block_size})")
        if dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, "
                             f"not {dataflow!r}")
        if acc is None:
            raise TypeError("acc must be a golden.arith.Accumulation, not None")
        check_acc(acc)
        check_pipeline(pipeline)
        if dataflow == "weight_stationary":
            if pe is not None:
                raise ValueError("pe factories apply to the output-stationary dataflow; the "
                                 "weight-stationary array has its own PE")
            if depth is None:
                depth = rows
            _check_pos_int("depth", depth)
        elif depth is not None:
            raise ValueError(f"depth applies to the weight-stationary dataflow only, not "
                             f"{dataflow!r}")
        if isinstance(pe, str):
            if pe not in PE_TYPES:
                raise ValueError(f"pe must be one of {', '.join(PE_TYPES)} or a PE factory, "
                                 f"not {pe!r}")
            pe = None if pe == "bitparallel" else functools.partial(BitSerialMXMacPE,
                                                                     pipeline=pipeline)
        if pe is None:
            pe = functools.partial(MXMacPE, pipeline=pipeline)
        if not callable(pe):
            raise TypeError(f"pe must be a PE factory pe(fmt_a, fmt_b, acc), not {pe!r}")
        self._serial = None                 # bits per K step of a bit-serial PE
        if _is_bitserial(pe):
            if acc.mode != "fixed":
                raise ValueError(f"the bit-serial PE implements fixed-point accumulation "
                                 f"only, not {acc.mode!r}")
            self._serial = check_serial_format(fmt_b)
        if shared_acc is not None and not isinstance(shared_acc, bool):
            raise TypeError(f"shared_acc must be None, True or False, not {shared_acc!r}")
        why_not = self._why_not_shared(dataflow, acc, pe, cols, fmt_a.block_size)
        if shared_acc and why_not:
            raise ValueError(f"shared_acc=True needs {why_not}")
        self._shared = not why_not if shared_acc is None else shared_acc
        self._rows, self._cols = rows, cols
        self._fmt_a, self._fmt_b, self._acc, self._pe = fmt_a, fmt_b, acc, pe
        self._dataflow = dataflow
        self._pipeline = pipeline
        self._depth = depth
        self._k = fmt_a.block_size
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    @staticmethod
    def _why_not_shared(dataflow, acc, pe, cols, k):
        """Why the row-shared accumulators cannot apply (a phrase for ``shared_acc=True``'s
        error), or None."""
        if dataflow != "output_stationary":
            return f"the output-stationary dataflow, not {dataflow!r}"
        if acc.mode != "fixed":
            return f"fixed-point accumulation, not {acc.mode!r}"
        if not (isinstance(pe, functools.partial) and pe.func is MXMacPE):
            return ("the bit-parallel PE (pe=None or 'bitparallel'), not a bit-serial PE or "
                    "a PE factory")
        if cols > k:
            return (f"cols <= k (at most one block end per row and cycle), not cols={cols} "
                    f"with k={k}")
        return None

    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    fmt_a = property(lambda self: self._fmt_a)
    fmt_b = property(lambda self: self._fmt_b)
    acc = property(lambda self: self._acc)
    k = property(lambda self: self._k, doc="Block size along K.")
    dataflow = property(lambda self: self._dataflow)
    pipeline = property(lambda self: self._pipeline)
    depth = property(lambda self: self._depth,
                     doc="Activation rows per pass (weight-stationary), else None.")
    shared_acc = property(lambda self: self._shared,
                          doc="The PEs of a row share one block-to-accumulator datapath "
                              "(:class:`~mxhw.systolic.rowacc.RowAccumulator`).")

    @property
    def pe_type(self):
        """``"bitserial"`` (:class:`BitSerialMXMacPE`), ``"bitparallel"`` (the default
        :class:`MXMacPE`), or ``"custom"`` (another factory)."""
        if self._serial is not None:
            return "bitserial"
        if isinstance(self._pe, functools.partial) and self._pe.func is MXMacPE:
            return "bitparallel"
        return "custom"

    @property
    def step_cycles(self):
        """Cycles per K step (input transfer): 1, or the bit-serial PE's weight bits
        (:func:`~mxhw.systolic.bitserial.serial_bits` of ``fmt_b``)."""
        return self._serial or 1

    @property
    def in_layout(self):
        fa, fb = self._fmt_a, self._fmt_b
        if self._dataflow == "weight_stationary":
            return ws_in_layout(fa, fb, self._rows, self._cols)
        return data.StructLayout({
            "a": data.ArrayLayout(unsigned(fa.element.bits), self._rows),
            "a_scale": data.ArrayLayout(unsigned(fa.scale.bits), self._rows),
            **({"a_mode": data.ArrayLayout(mode_port(fa), self._rows)} if fa.mode_bits
               else {}),
            "b": data.ArrayLayout(unsigned(fb.element.bits), self._cols),
            "b_scale": data.ArrayLayout(unsigned(fb.scale.bits), self._cols),
            **({"b_mode": data.ArrayLayout(mode_port(fb), self._cols)} if fb.mode_bits
               else {}),
            "last": 1,
        })

    @property
    def out_layout(self):
        from amaranth.hdl import signed
        return data.StructLayout({
            "data": data.ArrayLayout(signed(acc_width(self._acc)), self._cols),
            "special": data.ArrayLayout(1, self._cols),
        })

    @property
    def latency(self):
        """Cycles from a tile's last input transfer to its first output row being valid
        (weight-stationary: from a last-pass activation transfer to its row);
        output-stationary ``rows + cols + pe_latency + step_cycles`` (the output stage
        included)."""
        if self._dataflow == "weight_stationary":
            return ws_latency(self._rows, self._cols, self._pipeline)
        return self._rows + self._cols + self.pe_latency + self.step_cycles

    @property
    def pe_latency(self):
        """Cycles from a PE's last element (bit-serial: the final bit of its last step)
        to its result: ``1 + pipeline`` of :class:`MXMacPE` and
        :class:`BitSerialMXMacPE`; of an :class:`~mxhw.systolic.pe.MXBlockSumPE` with its
        row's :class:`~mxhw.systolic.rowacc.RowAccumulator`, that plus
        :func:`~mxhw.systolic.rowacc.row_extra_stages` (3 from ``pipeline`` 2 up, else 1); else the ``latency``
        attribute of a PE from the factory (1 if it has none)."""
        if isinstance(self._pe, functools.partial) and self._pe.func in (MXMacPE,
                                                                          BitSerialMXMacPE):
            p = self._pe.keywords.get("pipeline", 0)     # the PE's own register stages
            return 1 + p + (row_extra_stages(p) if self._shared else 0)
        return getattr(self._pe(self._fmt_a, self._fmt_b, self._acc), "latency", 1)

    def elaborate(self, platform):
        m = Module()
        if self._dataflow == "weight_stationary":
            return elaborate_ws(self, m)
        R, C, k = self._rows, self._cols, self._k
        fa, fb = self._fmt_a, self._fmt_b

        # ---- flow control: at most one finished tile waiting in the PE result registers
        # (row-shared: at most one finished tile in the output buffer)
        inflight = Signal()          # a last transfer accepted, its results not yet moved
                                     # (row-shared: not yet out of the buffer)
        p = self._serial
        take = self.i.valid & self.i.ready

        # ---- edge register and block counter
        cnt = Signal(range(k))
        x = Signal(self.in_layout)
        xv, xend, xlast = Signal(), Signal(), Signal()
        with m.If(take):
            m.d.sync += cnt.eq(0 if k == 1 else (cnt + 1) % k)
            with m.If(self.i.payload.last):
                m.d.sync += cnt.eq(0)
        if p is None:
            # the wide operand register loads every cycle (no enable: ``take`` would fan out
            # to every bit, across the array's edge); xv says whether it holds a transfer
            m.d.sync += [x.eq(self.i.payload), xend.eq(take & (cnt == k - 1)),
                         xlast.eq(take & self.i.payload.last)]
            m.d.comb += self.i.ready.eq(~(self.i.payload.last & inflight))
            m.d.sync += xv.eq(take)
            ctl = (("v", xv), ("e", xend), ("l", xlast))
            cols_in = [(("b", x.b[j]), ("b_scale", x.b_scale[j]),
                        *((("b_mode", x.b_mode[j]),) if fb.mode_bits else ()))
                       for j in range(C)]
        else:
            # bit-serial: a transfer is held for p cycles while the weights shift out, MSB
            # first; the next one is taken in the cycle of the last bit. The bit's place is
            # one-hot (``ph``: first and final bits are flip-flops), and the edge registers
            # load whenever they may (``lo``: no step, or its final bit), taken or not
            # (``xv`` says whether they hold a step): neither ``i.valid`` nor ``last``
            # reaches their enables.
            ph = Signal(p, init=1)
            xfirst, xfinal, lo = Signal(), Signal(), Signal()
            sreg = [Signal(p, name=f"sreg{j}") for j in range(C)]
            bnf = [Signal(name=f"bnf{j}") for j in range(C)]
            m.d.comb += [xfirst.eq(ph[0]), xfinal.eq(ph[p - 1]), lo.eq(~xv | xfinal),
                         self.i.ready.eq(lo & ~(self.i.payload.last & inflight))]
            with m.If(lo):
                m.d.sync += [x.eq(self.i.payload), xend.eq(cnt == k - 1),
                             xlast.eq(self.i.payload.last), xv.eq(take), ph.eq(1)]
            with m.Else():
                m.d.sync += ph.eq(ph.rotate_left(1))
            for j in range(C):
                w, nf = fixed_form(m, operand_element(fb), moded_code(
                    fb, self.i.payload.b[j], self.i.payload.b_mode[j] if fb.mode_bits else None))
                m.d.sync += sreg[j].eq(Mux(lo, w.as_unsigned(), sreg[j] << 1))
                with m.If(lo):
                    m.d.sync += bnf[j].eq(nf)
            ctl = (("v", xv), ("f", xfirst), ("z", xfinal), ("e", xend), ("l", xlast))
            cols_in = [(("b_bit", sreg[j][p - 1]), ("b_nonfinite", bnf[j]),
                        ("b_scale", x.b_scale[j])) for j in range(C)]

        def delay(sig, n, name, keep=False):
            return delay_line(m, sig, n, name, keep)

        # skewed edge operands: row i delayed i cycles, column j delayed j; the PE ports
        # they drive, by name (the control: ``ctl``)
        rows_in = [(("a", x.a[i]), ("a_scale", x.a_scale[i]),
                    *((("a_mode", x.a_mode[i]),) if fa.mode_bits else ()), *ctl)
                   for i in range(R)]
        # the control (``ctl``) is the same for every row: row i takes row i - 1's one
        # register later (a chain: no register of the edge reaches every row), each kept
        # apart (:func:`delay_line`)
        ctl_names = {n for n, _ in ctl}
        a_in = []
        for i in range(R):
            a_in.append(tuple(
                (n, delay(dict(a_in[i - 1])[n] if i else s_, 1 if i else 0, f"{n}{i}", True)
                 if n in ctl_names else delay(s_, i, f"{n}{i}"))
                for n, s_ in rows_in[i]))
        b_in = [tuple((n, delay(s_, j, f"{n}{j}")) for n, s_ in cols_in[j]) for j in range(C)]
        ports = {"v": "valid", "e": "block_end", "l": "last", "f": "first", "z": "final"}

        # shared accumulators: the MXMacPE partial's pipeline, split between PE and row unit
        shared_p = self._pe.keywords.get("pipeline", 0) if self._shared else None
        pes = [[None] * C for _ in range(R)]
        b_out = {}
        for i in range(R):
            ah = a_in[i]
            for j in range(C):
                bv = b_in[j] if i == 0 else b_out[i - 1, j]
                if self._shared:
                    pe = MXBlockSumPE(fa, fb, pipeline=shared_p)
                else:
                    pe = self._pe(fa, fb, self._acc)
                m.submodules[f"pe_{i}_{j}"] = pe
                pes[i][j] = pe
                m.d.comb += [getattr(pe, ports.get(n, n)).eq(s_) for n, s_ in ah + bv]
                # registered pass-through to the right and down
                ah = tuple((n, delay(s_, 1, f"h{i}_{j}_{n}", n in ctl_names)) for n, s_ in ah)
                b_out[i, j] = tuple((n, delay(s_, 1, f"w{i}_{j}_{n}")) for n, s_ in bv)

        # ---- the PEs' results (``result``, ``special``): their own, or their row unit's
        if self._shared:
            # The scale codes of each block end go to the row units beside it (not through
            # the rows' multiplexers, not added in the PEs), made from the edge registers.
            # A PE's block end comes ``d`` cycles after its last element (d = the PE's
            # latency); row i, column j of the transfer in ``x`` at cycle X enters PE (i, j)
            # at X + i + j.
            d = pes[0][0].latency
            sbits = len(x.b_scale[0])
            if d >= 1:
                # B: on a block end the edge loads all columns' codes into a shift register
                # that moves one column per cycle, so ``sr[0]`` holds column j's code at
                # X + 1 + j; ``d - 1`` registers more put it at row 0's block end, X + j + d
                sr = [Signal(sbits, name=f"b_scale_sr{j}", reset_less=True) for j in range(C)]
                with m.If(xend):
                    m.d.sync += [sr[j].eq(x.b_scale[j]) for j in range(C)]
                with m.Else():
                    m.d.sync += [sr[j].eq(sr[j + 1]) for j in range(C - 1)]
                b_row = delay(sr[0], d - 1, "b_scale_end")
            else:
                # without PE registers: row 0's PEs' codes selected by their block ends
                b_row, stmt = one_hot_select([pe.block_valid for pe in pes[0]],
                                             [pe.block_b_scale for pe in pes[0]],
                                             unsigned(sbits), "b_scale_sel")
                m.d.comb += stmt
            a_blk = []
            for i in range(R):
                # A: one register per row, loaded as the block's last element enters the
                # row's first PE (X + i), then ``d - 1`` registers: it holds the block's
                # code from X + i + d, the row's first block end, for at least k >= cols
                # cycles (the next block's load comes k or more cycles later)
                ain = dict(a_in[i])
                a_end = ain["v"] & ain["e"]
                a_reg = Signal(len(ain["a_scale"]), name=f"a_scale_blk{i}", reset_less=True)
                with m.If(a_end):
                    m.d.sync += a_reg.eq(ain["a_scale"])
                if d >= 1:
                    a_blk.append(delay(a_reg, d - 1, f"a_scale_end{i}"))
                else:
                    a_now = Signal.like(a_reg, name=f"a_scale_now{i}")
                    m.d.comb += a_now.eq(Mux(a_end, ain["a_scale"], a_reg))
                    a_blk.append(a_now)
            results = []
            for i in range(R):
                m.submodules[f"rowacc_{i}"] = ra = RowAccumulator(
                    fa, fb, self._acc, C, pipeline=shared_p, result_ring=False,
                    idle_zero=True)     # MXBlockSumPE zeroes its fields between block ends
                for j in range(C):
                    for n in ("valid", "sum", "nonfinite", "last"):
                        m.d.comb += getattr(ra, f"block_{n}")[j].eq(
                            getattr(pes[i][j], f"block_{n}"))
                # row i's block ends come i cycles after row 0's: so do its B codes
                m.d.comb += [ra.a_scale.eq(a_blk[i]), ra.b_scale.eq(b_row)]
                if i < R - 1:
                    b_row = delay(b_row, 1, f"b_scale_row{i + 1}")
                fin = clamp_acc(m, self._acc, ra.fin, f"fin{i}") if ra.fin_unclamped else ra.fin
                results.append((fin, ra.fin_special, ra.fin_valid_next))
        else:
            results = [[(pe.result, pe.special) for pe in row] for row in pes]

        # ---- de-skew: all PEs hold the tile once the corner PE has seen its last element
        # (bit-serial: the final bit of its last step)
        # The flag reaches every row's buffer control: its last register is copied per
        # row (``keep``: equal registers, kept apart), each copy driving one row's flags,
        # so no one flip-flop fans out across the whole buffer.
        corner = pes[R - 1][C - 1]
        lat = self.pe_latency if self._shared else getattr(corner, "latency", 1)
        corner_last = Signal()
        m.d.comb += corner_last.eq(corner.valid & corner.last &
                                   (corner.final if p is not None else 1))
        if lat >= 2:
            done_pre = delay(corner_last, lat - 2, "done")
            corner_done = [delay(done_pre, 1, f"done_row{i}", keep=True) for i in range(R)]
        else:
            corner_done = [corner_last] * R

        # Output buffer: one register per result, rows shifting up by one per transfer, so
        # row 0 is the head (no wide row multiplexer; cheap in logic and in simulation).
        # Row-shared, its rows are also the row units' result rings (filled in place).
        # Its control is replicated per row and per group of OUT_GROUP columns (flags
        # ``hf``: the PE results hold a finished tile; ``ov``: this buffer row holds a result
        # row; ``load``; ``adv``: the rows shift up). Every copy keeps its own state (each
        # one's next value depends on itself), so synthesis keeps them apart, and each
        # enable reaches at most OUT_GROUP results instead of all R x C: the enable's
        # fan-out no longer grows with the array.
        #
        # The head moves into a three-row output stage (below). The rows shift on
        # ``adv``, a flip-flop set a cycle ahead from flip-flops alone (no ``o.ready``):
        # the row will hold a result, and the stage will have room whatever ``o.ready``
        # does next. Each row's copy of ``adv`` is made from its own flags, the next row's
        # and the stage's count: no flag of row 0 reaches the other rows.
        W = acc_width(self._acc)
        # (data registers without reset: the flags say what they hold, and the domain
        # reset's fan-out stays off them)
        od = [[Signal(signed(W), name=f"od{i}_{j}", reset_less=True) for j in range(C)]
              for i in range(R)]
        osp = [[Signal(name=f"os{i}_{j}", reset_less=True) for j in range(C)] for i in range(R)]
        groups = [range(g, min(g + OUT_GROUP, C)) for g in range(0, C, OUT_GROUP)]
        G = len(groups)
        shared = self._shared
        # (``hf``: per-PE accumulation only; the row-shared buffer holds the one tile)
        hf = None if shared else [[Signal(name=f"hf{i}_{g}") for g in range(G)]
                                  for i in range(R)]
        ov = [[Signal(name=f"ov{i}_{g}") for g in range(G)] for i in range(R)]
        adv = [[Signal(name=f"adv{i}_{g}") for g in range(G)] for i in range(R)]
        # (row-shared, every group's ``load`` of a row is the same register, kept apart:
        # merged, one flip-flop would reach every column's flags)
        load = [[Signal(name=f"load{i}_{g}", attrs={"keep": 1} if shared else {})
                 for g in range(G)] for i in range(R)]
        with m.If(take & self.i.payload.last):
            m.d.sync += inflight.eq(1)

        # ---- the output stage: a queue of OUT_STAGE rows (``o.payload`` is its head,
        # selected by a one-hot read pointer), copied per column group like the buffer's
        # control. ``o.ready`` reaches only each group's read pointer, count and valid flag
        # (a handful of flip-flops per group). The buffer's rows shift on ``adv``, set a
        # cycle ahead with room guaranteed whatever ``o.ready`` does: ``cnt + adv <=
        # OUT_STAGE - 1`` (the stage holds at most that many rows after this cycle), from
        # flip-flops alone. Three entries keep one row per cycle flowing (the count stays
        # at 1 while ``o`` takes a row every cycle).
        S = OUT_STAGE
        st = [[Signal(signed(W), name=f"st{e}_{j}", reset_less=True) for j in range(C)]
              for e in range(S)]
        sts = [[Signal(name=f"st{e}s_{j}", reset_less=True) for j in range(C)]
               for e in range(S)]
        vld = [Signal(name=f"ovalid{g}") for g in range(G)]
        cnt_o = [Signal(range(S + 1), name=f"ocnt{g}") for g in range(G)]
        rptr = [Signal(S, init=1, name=f"rptr{g}") for g in range(G)]
        wptr = [Signal(S, init=1, name=f"wptr{g}") for g in range(G)]
        we = [[Signal(name=f"we{e}_{g}") for e in range(S)] for g in range(G)]
        m.d.comb += self.o.valid.eq(vld[0])
        for g, cols in enumerate(groups):
            a = adv[0][g]
            pop = Signal(name=f"pop{g}")
            m.d.comb += pop.eq(vld[g] & self.o.ready)
            n_next = cnt_o[g] + a - pop
            m.d.sync += [cnt_o[g].eq(n_next), vld[g].eq(n_next != 0)]
            with m.If(pop):
                m.d.sync += rptr[g].eq(rptr[g].rotate_left(1))
            for j in cols:
                sel_d, sel_s = st[S - 1][j], sts[S - 1][j]
                for e in reversed(range(S - 1)):
                    sel_d = Mux(rptr[g][e], st[e][j], sel_d)
                    sel_s = Mux(rptr[g][e], sts[e][j], sel_s)
                m.d.comb += [self.o.payload.data[j].eq(sel_d),
                             self.o.payload.special[j].eq(sel_s)]
                # entry e takes the head in the cycle its write flag (a flip-flop set a
                # cycle ahead: ``adv`` next and the write pointer then) is high
                for e in range(S):
                    with m.If(we[g][e]):
                        m.d.sync += [st[e][j].eq(od[0][j]), sts[e][j].eq(osp[0][j])]

        def shift_row(i, g, cols, en_next, sel_next, picks):
            # buffer row i's registers of group g: enable and select flip-flops set a cycle
            # ahead (the select a copy of its own, ``keep``), each register taking
            # ``picks[n][0]`` when selected, else ``picks[n][1]`` (data, special pairs)
            en = Signal(name=f"oden{i}_{g}")
            sel = Signal(name=f"odsel{i}_{g}", attrs={"keep": 1})
            m.d.sync += [en.eq(en_next), sel.eq(sel_next)]
            with m.If(en):
                for j, (a_, b_) in zip(cols, picks):
                    m.d.sync += [od[i][j].eq(Mux(sel, a_[0], b_[0])),
                                 osp[i][j].eq(Mux(sel, a_[1], b_[1]))]

        for g, cols in enumerate(groups):
            for i in range(R):
                # The tile moves in once the buffer is empty (row 0 moved out: all rows
                # moved out). ``load`` is a flip-flop (its fan-out is the group's result
                # registers), set one cycle ahead from flip-flops alone: the finished tile
                # (``hf``, or ``corner_done`` arriving) and the buffer empty now and not
                # loading now (it stays empty then: only a load fills it), so a tile loads
                # at most one cycle later than the buffer allows.
                # Row-shared: the buffer's rows are the row units' result rings, filled in
                # place, so ``load`` only marks the rows full (one cycle after the tile is
                # done, as above); the buffer is empty then (``inflight`` holds the next
                # tile's last transfer off until it is).
                ld, ad = load[i][g], adv[i][g]
                if shared:
                    ld_next = corner_done[i]
                else:
                    ld_next = ~ld & (hf[i][g] | corner_done[i]) & ~ov[0][g]
                m.d.sync += ld.eq(ld_next)
                # ``adv`` next: this row holds a row next cycle (then so does the head:
                # valid rows are a prefix) and the stage will have room. Each row's copy
                # sees its own flags and the row below's: rows that hold results shift
                # together (a row that holds none keeps still, its data read by no one);
                # the stage's count is the one signal every row's copy shares.
                ovi_next = Mux(ld, 1, Mux(ad, ov[i + 1][g] if i < R - 1 else 0, ov[i][g]))
                ad_next = ovi_next & (cnt_o[g] + ad <= S - 1)
                m.d.sync += ad.eq(ad_next)
                if i == 0:
                    # the stage's write flags: entry e takes the head next cycle
                    wp = Mux(ad, wptr[g].rotate_left(1), wptr[g])
                    m.d.sync += wptr[g].eq(wp)
                    m.d.sync += [we[g][e].eq(ad_next & wp[e]) for e in range(S)]
                if not shared:
                    with m.If(corner_done[i]):
                        m.d.sync += hf[i][g].eq(1)
                with m.If(ld):
                    m.d.sync += ov[i][g].eq(1)
                    if not shared:
                        m.d.sync += hf[i][g].eq(0)
                        if i == 0 and g == 0:
                            m.d.sync += inflight.eq(0)
                # the rows shift up: valid rows are a prefix, so ``adv`` (the head holds a
                # row) with row i holding one moves row i + 1 into it
                with m.Elif(ad & ov[i][g]):
                    m.d.sync += ov[i][g].eq(ov[i + 1][g] if i < R - 1 else 0)
                    if i == 0 and g == 0 and shared:
                        # the buffer's last row leaves: the next tile's results may come
                        with m.If(~ov[1][g] if R > 1 else 1):
                            m.d.sync += inflight.eq(0)
                # The row's data registers load a tile (``ld``; row-shared: shift in the
                # row unit's results as its ring) or take the row below whenever the rows
                # shift (``ad``; a row that is or becomes empty takes data no one reads:
                # the flags say what a row holds). That enable, ``ld | ad``, is a flip-flop
                # of its own set a cycle ahead from the same flags' next values, so the
                # group's data registers see a flip-flop's output on their enable and
                # ``ld`` on their multiplexer's select: no logic between the flags and the
                # fan-out.
                # The multiplexers' select is a copy of ``ld`` (row-shared: of ``adv``) of
                # its own (``keep``): the flag itself is pulled towards the buffer's
                # control (row 0's flags), the copy only towards the row's data registers.
                if shared:
                    fin, fin_sp, fin_next = results[i]
                    # ring: column j takes column j + 1, the last column the new result
                    ring = [(od[i][j + 1], osp[i][j + 1]) if j < C - 1 else (fin, fin_sp)
                            for j in cols]
                    if i < R - 1:
                        below = [(od[i + 1][j], osp[i + 1][j]) for j in cols]
                        shift_row(i, g, cols, fin_next | ad_next, ad_next, list(zip(below, ring)))
                    else:
                        # (equal for every group, kept apart as ``load``)
                        en = Signal(name=f"oden{i}_{g}", attrs={"keep": 1})
                        m.d.sync += en.eq(fin_next)
                        with m.If(en):
                            for j, (d_, s_) in zip(cols, ring):
                                m.d.sync += [od[i][j].eq(d_), osp[i][j].eq(s_)]
                elif i < R - 1:
                    shift_row(i, g, cols, ld_next | ad_next, ld_next,
                              [(results[i][j], (od[i + 1][j], osp[i + 1][j])) for j in cols])
                else:
                    with m.If(ld):
                        m.d.sync += [od[i][j].eq(results[i][j][0]) for j in cols]
                        m.d.sync += [osp[i][j].eq(results[i][j][1]) for j in cols]
        return m
