"""A precision-scalable output-stationary systolic array: one datapath serving several MX
format pairs, chosen per operation by a ``mode`` field, with more MACs per cycle for the
narrower formats (:class:`ScalableArray`; its PE: :class:`~mxhw.systolic.scalable_pe.
ScalablePE`). See ``docs/scalable.md``."""

from __future__ import annotations

import operator

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_bool, check_int
from ..lib.signals import delay_line, one_hot_select
from .array import DEFAULT_PIPELINE
from .driver import zero_code
from .grid import check_pe_pipeline, clamp_acc, out_layout
from .outbuf import OutputBuffer
from .pegrid import pe_grid
from .rowacc import RowAccumulator, row_extra_stages
from .scalable_pe import ScalableBlockSumPE, ScalablePE, check_fixed_acc, scale_modes

__all__ = ["ScalableArray", "DEFAULT_MODES", "scalable_in_layout", "scalable_beats"]

#: The modes of :class:`ScalableArray` by default: MXINT8 (1 MAC per PE and cycle), MXFP8
#: E4M3 and MXFP6 E2M3 (2), MXFP4 (4).
DEFAULT_MODES = ("mxint8", "mxfp8_e4m3", "mxfp6_e2m3", "mxfp4")


def scalable_in_layout(modes, rows, cols):
    """Layout of a :class:`ScalableArray` input transfer (``modes``: :func:`scale_modes`)."""
    word = max(md.word for md in modes)
    sbits = modes[0].fmt.scale.bits
    return data.StructLayout({
        "mode": range(len(modes)),
        "a": data.ArrayLayout(unsigned(word), rows),
        "a_scale": data.ArrayLayout(unsigned(sbits), rows),
        "b": data.ArrayLayout(unsigned(word), cols),
        "b_scale": data.ArrayLayout(unsigned(sbits), cols),
        "last": 1,
    })


class ScalableArray(wiring.Component):
    """A ``rows x cols`` output-stationary array of :class:`~mxhw.systolic.scalable_pe.
    ScalablePE` computing ``C = A @ B`` for both operands in one of ``modes``, chosen per
    transfer by ``i.payload.mode`` (constant within a tile; tiles of different modes may
    follow each other back to back).

    A transfer carries, per row of A and column of B, one operand word of ``lanes``
    element codes (K consecutive elements, the first in the low bits) and the scale code
    of their block: ``lanes`` K steps at once, ``rows * cols * lanes`` MACs per cycle.
    ``lanes`` is 1 for MXINT8, 2 for MXFP8 / MXFP6, 4 for MXFP4
    (:class:`~mxhw.systolic.scalable_pe.ScaleMode`). The host side: :func:`scalable_beats`.

    Parameters
    ----------
    rows, cols : int
        Array shape, >= 1.
    modes : sequence of str or BlockFormat
        Formats served (:func:`~mxhw.systolic.scalable_pe.scale_modes`); default
        :data:`DEFAULT_MODES`.
    acc : golden.arith.Accumulation
        ``golden.arith.fixed(...)`` (required).
    pipeline : int
        PE register stages, 0..4; default :data:`~mxhw.systolic.DEFAULT_PIPELINE`.
    shared : bool or None
        Row-shared accumulation: the PEs (:class:`~mxhw.systolic.scalable_pe.
        ScalableBlockSumPE`) hand their exact block sums to one
        :class:`~mxhw.systolic.rowacc.RowAccumulator` per row, as the fixed arrays' do
        (needs ``cols`` <= the fewest transfers per block of any mode, 8 for MXFP4).
        False: every PE accumulates (:class:`~mxhw.systolic.scalable_pe.ScalablePE`).
        None (the default): shared where it can be.

    Members
    -------
    i : In(stream.Signature(scalable_in_layout(...)))
    o : Out(stream.Signature(out_layout(acc, cols)))
        ``rows`` result rows per tile, ``data * 2**-frac_bits``, ``special`` (NaN).

    Latency :attr:`latency` cycles from a tile's last transfer to its first result row;
    throughput one transfer per cycle while ``o`` is ready. Golden twin:
    :func:`mxhw.golden.arith.gemm` with the same ``fixed`` accumulation, in every mode.

    Raises
    ------
    TypeError, ValueError
        A bad parameter (the message names it).
    """

    def __init__(self, rows, cols, modes=DEFAULT_MODES, acc=None, pipeline=DEFAULT_PIPELINE,
                 shared=None):
        check_int("rows", rows, 1)
        check_int("cols", cols, 1)
        modes = scale_modes(modes)
        check_fixed_acc(acc)
        check_pe_pipeline(pipeline)
        steps = min(md.steps for md in modes)
        if shared is None:
            shared = cols <= steps
        check_bool("shared", shared)
        if shared and cols > steps:
            raise ValueError(f"shared=True needs cols <= {steps} (the fewest transfers per "
                             f"block of the modes: at most one block end per row and "
                             f"cycle), not cols={cols}")
        self._shared = shared
        self._rows, self._cols, self._modes = rows, cols, modes
        self._acc, self._pipeline = acc, pipeline
        super().__init__({
            "i": In(stream.Signature(scalable_in_layout(modes, rows, cols))),
            "o": Out(stream.Signature(out_layout(acc, cols))),
        })

    rows, cols, modes, acc, pipeline, shared = (
        property(operator.attrgetter(f"_{n}"))
        for n in ("rows", "cols", "modes", "acc", "pipeline", "shared"))

    def mode_index(self, fmt):
        """The ``mode`` value of block format ``fmt`` (a name, alias or descriptor)."""
        from .grid import array_block_format
        f = array_block_format(fmt, "fmt")
        for n, md in enumerate(self._modes):
            if md.fmt.name == f.name:
                return n
        raise ValueError(f"fmt {f.name} is not a mode of this array; modes: "
                         f"{', '.join(md.fmt.name for md in self._modes)}")

    def macs_per_cycle(self, fmt):
        """MACs per cycle at full throughput in the mode of ``fmt``."""
        return self._rows * self._cols * self._modes[self.mode_index(fmt)].lanes

    @property
    def pe_latency(self):
        """Cycles from a PE's last transfer of a tile to its result: ``1 + pipeline``,
        plus :func:`~mxhw.systolic.rowacc.row_extra_stages` when :attr:`shared`."""
        p = self._pipeline
        return 1 + p + (row_extra_stages(p) if self._shared else 0)

    @property
    def latency(self):
        """Cycles from a tile's last transfer to its first result row:
        ``rows + cols + pe_latency + 1``."""
        return self._rows + self._cols + self.pe_latency + 1

    def elaborate(self, platform):
        m = Module()
        R, C, modes = self._rows, self._cols, self._modes
        m.submodules.outbuf = buf = OutputBuffer(R, C, self._acc, self._shared)
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~(self.i.payload.last & buf.busy))

        # ---- edge register and block counter (a block is ``steps`` transfers in the
        # transfer's mode)
        k = modes[0].fmt.block_size
        cnt = Signal(range(k))
        end = Signal()
        with m.Switch(self.i.payload.mode):
            for n, md in enumerate(modes):
                with m.Case(n):
                    m.d.comb += end.eq(cnt == md.steps - 1)
        with m.If(take):
            m.d.sync += cnt.eq(cnt + 1)
            with m.If(end | self.i.payload.last):
                m.d.sync += cnt.eq(0)
        x = Signal(scalable_in_layout(modes, R, C))
        xv, xend, xlast = Signal(), Signal(), Signal()
        m.d.sync += [x.eq(self.i.payload), xv.eq(take), xend.eq(take & end),
                     xlast.eq(take & self.i.payload.last)]

        # ---- skew: row i's operands and the control i cycles late, column j's j
        ctl = (("valid", xv), ("block_end", xend), ("last", xlast), ("mode", x.mode))
        a_in = [tuple((n, delay_line(m, s, i, f"{n}{i}", n != "a" and n != "a_scale"))
                      for n, s in (("a", x.a[i]), ("a_scale", x.a_scale[i]), *ctl))
                for i in range(R)]
        b_in = [tuple((n, delay_line(m, s, j, f"{n}{j}"))
                      for n, s in (("b", x.b[j]), ("b_scale", x.b_scale[j])))
                for j in range(C)]
        fmts = [md.fmt for md in modes]
        pes = pe_grid(m, a_in, b_in, lambda: (
            ScalableBlockSumPE(fmts, self._pipeline) if self._shared
            else ScalablePE(fmts, self._acc, self._pipeline)),
            keep=("valid", "block_end", "last", "mode"))

        # ---- de-skew: the corner PE's last element, its latency - 1 cycles on, says every
        # PE holds the tile (the buffer loads the results the cycle after)
        corner = pes[R - 1][C - 1]
        corner_last = Signal()
        m.d.comb += corner_last.eq(corner.valid & corner.last)
        done = delay_line(m, corner_last, self.pe_latency - 1, "done")
        m.d.comb += [buf.tile_in.eq(take & self.i.payload.last),
                     *(buf.done[i].eq(done) for i in range(R))]
        if self._shared:
            self._row_units(m, pes, buf)
        else:
            for i in range(R):
                for j in range(C):
                    m.d.comb += [buf.result[i][j].eq(pes[i][j].result),
                                 buf.special[i][j].eq(pes[i][j].special)]
        wiring.connect(m, buf.o, wiring.flipped(self.o))
        return m

    def _row_units(self, m, pes, buf):
        """One :class:`~mxhw.systolic.rowacc.RowAccumulator` per row on the common grid of
        the PEs' block sums, its scale codes selected from the PE whose block ends; its
        finished results into the output buffer's row."""
        f0 = self._modes[0].fmt
        for i, row in enumerate(pes):
            m.submodules[f"rowacc_{i}"] = ra = RowAccumulator(
                f0, f0, self._acc, self._cols, pipeline=self._pipeline, result_ring=False,
                idle_zero=True, grid=(row[0].lsb_exp, row[0].block_sum_width))
            valid = [pe.block_valid for pe in row]
            for j, pe in enumerate(row):
                for n in ("valid", "sum", "nonfinite", "last"):
                    m.d.comb += getattr(ra, f"block_{n}")[j].eq(getattr(pe, f"block_{n}"))
            for n in ("a_scale", "b_scale"):
                sel, stmt = one_hot_select(valid, [getattr(pe, f"block_{n}") for pe in row],
                                           unsigned(len(row[0].block_a_scale)),
                                           f"{n}_end{i}")
                m.d.comb += [stmt, getattr(ra, n).eq(sel)]
            fin = clamp_acc(m, self._acc, ra.fin, f"fin{i}") if ra.fin_unclamped else ra.fin
            m.d.comb += [buf.fin[i].eq(fin), buf.fin_special[i].eq(ra.fin_special),
                         buf.fin_valid_next[i].eq(ra.fin_valid_next)]


def scalable_beats(array, a, b, m0, n0):
    """Input transfers (dicts for ``array.i``, a :class:`ScalableArray`) of the output tile
    at ``(m0, n0)`` of ``C = a @ b`` (MXArrays of one of the array's modes, equal formats;
    ``a`` blocked along axis 1, ``b`` along axis 0). Rows / columns beyond the matrix get
    zero codes and scale code 0."""
    if a.fmt.name != b.fmt.name:
        raise ValueError(f"a and b must share one format, not {a.fmt.name} and {b.fmt.name}")
    mode = array.mode_index(a.fmt)
    md = array.modes[mode]
    M, K = a.shape
    N = b.shape[1]
    k, L, eb = a.fmt.block_size, md.lanes, a.fmt.element.bits
    z = zero_code(a.fmt)

    def word(codes):
        return sum(int(c) << (eb * n) for n, c in enumerate(codes))

    beats = []
    for k0 in range(0, K, L):
        ks = range(k0, k0 + L)
        beats.append({
            "mode": mode,
            "a": [word(a.elements[m0 + i, ks] if m0 + i < M else [z] * L)
                  for i in range(array.rows)],
            "a_scale": [int(a.scales[m0 + i, k0 // k]) if m0 + i < M else 0
                        for i in range(array.rows)],
            "b": [word(b.elements[ks, n0 + j] if n0 + j < N else [z] * L)
                  for j in range(array.cols)],
            "b_scale": [int(b.scales[k0 // k, n0 + j]) if n0 + j < N else 0
                        for j in range(array.cols)],
            "last": int(k0 + L >= K),
        })
    return beats
