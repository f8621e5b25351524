"""Small reference designs for the simulation back ends (tests and ``python -m mxhw.bench sim``).

These are fixtures for exercising and measuring the simulators, not accelerator blocks:

* :class:`MACGrid` -- an ``n`` x ``n`` grid of registered ``width``-bit multiply-accumulate
  cells, operands flowing right and down (port arrays, batch runs);
* :class:`StreamMACGrid` -- the MAC grid behind streams: one K step (a column of A, a row
  of B) per input transfer, result rows out after a tile's ``last`` step (the testbench
  shape of ``mxhw.systolic.SystolicArray``, with plain integer MACs);
* :class:`StreamPipeline` -- a ``stages``-deep valid/ready pipeline computing
  ``(x * 3 + 1) mod 2**width`` per stage, with back-pressure;
* :class:`WideAdder` -- a registered adder with ports wider than 64 bits and a ``lib.data``
  struct port.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.params import check_int

__all__ = ["MACGrid", "StreamMACGrid", "StreamPipeline", "WideAdder", "WideWord"]


def _grid_params(n, width, acc_width):
    """``(n, width, acc_width)`` checked; ``acc_width`` defaults to ``2 * width + 8``."""
    check_int("n", n, 1)
    check_int("width", width, 1)
    acc_width = 2 * width + 8 if acc_width is None else check_int("acc_width", acc_width, 1)
    return n, width, acc_width


class MACGrid(wiring.Component):
    """``n`` x ``n`` grid of multiply-accumulate cells.

    Cell ``(r, c)`` registers the operand ``a`` arriving from its left neighbour (row input
    ``a[r]`` for ``c == 0``) and ``b`` from the neighbour above (column input ``b[c]`` for
    ``r == 0``), and when ``en`` is high adds the product of its registered operands to its
    accumulator; ``clear`` zeroes every accumulator.

    Members
    -------
    a : In(width).array(n)      row operands
    b : In(width).array(n)      column operands
    en, clear : In(1)
    acc : Out(acc_width).array(n, n)   accumulators (registered)
    """

    def __init__(self, n=8, width=8, acc_width=None):
        self.n, self.width, self.acc_width = _grid_params(n, width, acc_width)
        super().__init__({
            "a": In(width).array(n),
            "b": In(width).array(n),
            "en": In(1),
            "clear": In(1),
            "acc": Out(self.acc_width).array(n, n),
        })

    def elaborate(self, platform):
        m = Module()
        n, w = self.n, self.width
        ra = [[Signal(w, name=f"ra_{r}_{c}") for c in range(n)] for r in range(n)]
        rb = [[Signal(w, name=f"rb_{r}_{c}") for c in range(n)] for r in range(n)]
        for r in range(n):
            for c in range(n):
                m.d.sync += ra[r][c].eq(self.a[r] if c == 0 else ra[r][c - 1])
                m.d.sync += rb[r][c].eq(self.b[c] if r == 0 else rb[r - 1][c])
                with m.If(self.clear):
                    m.d.sync += self.acc[r][c].eq(0)
                with m.Elif(self.en):
                    m.d.sync += self.acc[r][c].eq(self.acc[r][c] + ra[r][c] * rb[r][c])
        return m


class StreamMACGrid(wiring.Component):
    """``n`` x ``n`` unsigned multiply-accumulate cells fed by a stream, one K step per
    transfer: ``C[r][c] += a[r] * b[c]`` (modulo ``2**acc_width``).

    Operands are registered on transfer and multiplied-accumulated on the next cycle. A
    transfer with ``last`` ends the tile: its accumulators move to the output buffer,
    restart at zero, and leave on ``o`` as ``n`` rows (row 0 first). ``i.ready`` holds off
    a tile's ``last`` transfer while the previous tile is still in the MACs or its rows
    are still leaving.

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(width, n),
        "b": ArrayLayout(width, n), "last": 1})))
    o : Out(stream.Signature(ArrayLayout(acc_width, n)))

    Reference: :meth:`reference` (NumPy).
    """

    def __init__(self, n=8, width=8, acc_width=None):
        self.n, self.width, self.acc_width = _grid_params(n, width, acc_width)
        self.in_layout = data.StructLayout({"a": data.ArrayLayout(width, n),
                                            "b": data.ArrayLayout(width, n), "last": 1})
        self.out_layout = data.ArrayLayout(self.acc_width, n)
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def reference(self, a, b):
        """``C`` for one tile: ``a`` (K x n) and ``b`` (K x n) integer arrays."""
        import numpy as np
        c = np.asarray(a, dtype=object).T.dot(np.asarray(b, dtype=object))
        return c % (1 << self.acc_width)

    def elaborate(self, platform):
        m = Module()
        n, aw = self.n, self.acc_width
        acc = [[Signal(aw, name=f"acc_{r}_{c}") for c in range(n)] for r in range(n)]
        # the output buffer: one result row per word, row 0 on the output; the rows shift up
        # one place per output transfer (no row-select multiplexer)
        obuf = [Signal(self.out_layout, name=f"obuf_{r}") for r in range(n)]
        # operand registers (one slice of the payload per lane, as MACGrid's edge registers)
        ra = [Signal(self.width, name=f"ra_{r}") for r in range(n)]
        rb = [Signal(self.width, name=f"rb_{c}") for c in range(n)]
        rv, rlast = Signal(), Signal()
        out_full = Signal()
        row = Signal(range(n))
        # hold off a last transfer while the previous tile is in the MACs or leaving
        m.d.comb += self.i.ready.eq(~(self.i.payload.last & (out_full | (rv & rlast))))
        take = self.i.valid & self.i.ready
        m.d.sync += rv.eq(take)
        with m.If(take):
            m.d.sync += [*(ra[r].eq(self.i.payload.a[r]) for r in range(n)),
                         *(rb[c].eq(self.i.payload.b[c]) for c in range(n)),
                         rlast.eq(self.i.payload.last)]
        total = [[(acc[r][c] + ra[r] * rb[c])[:aw] for c in range(n)] for r in range(n)]
        with m.If(rv):
            m.d.sync += [acc[r][c].eq(Mux(rlast, 0, total[r][c]))
                         for r in range(n) for c in range(n)]
        m.d.comb += [self.o.valid.eq(out_full), self.o.payload.eq(obuf[0])]
        with m.If(rv & rlast):
            # a tile's last step: its sums move to the output buffer (empty: ``i.ready``
            # held the last transfer off while the previous tile's rows were leaving)
            m.d.sync += [*(obuf[r].eq(Cat(*total[r])) for r in range(n)),
                         out_full.eq(1), row.eq(0)]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += [*(obuf[r].eq(obuf[r + 1]) for r in range(n - 1)), row.eq(row + 1)]
            with m.If(row == n - 1):
                m.d.sync += out_full.eq(0)
        return m


class StreamPipeline(wiring.Component):
    """``stages`` registered stages, each computing ``(x * 3 + 1) mod 2**width``.

    Members
    -------
    i : In(stream.Signature(width))
    o : Out(stream.Signature(width))

    Latency ``stages`` cycles; one word per cycle.
    """

    def __init__(self, width=16, stages=3):
        check_int("width", width, 1)
        check_int("stages", stages, 1)
        self._width, self._stages = width, stages
        super().__init__({
            "i": In(stream.Signature(width)),
            "o": Out(stream.Signature(width)),
        })

    def reference(self, x):
        for _ in range(self._stages):
            x = (x * 3 + 1) % (1 << self._width)
        return x

    def elaborate(self, platform):
        m = Module()
        prev_payload, prev_valid, prev_ready = self.i.payload, self.i.valid, self.i.ready
        for s in range(self._stages):
            last = s == self._stages - 1
            payload = self.o.payload if last else Signal(self._width, name=f"p{s}")
            valid = self.o.valid if last else Signal(name=f"v{s}")
            ready = self.o.ready if last else Signal(name=f"r{s}")
            take = Signal(name=f"take{s}")
            m.d.comb += take.eq(~valid | ready)
            m.d.comb += prev_ready.eq(take)
            with m.If(take):
                m.d.sync += valid.eq(prev_valid)
                with m.If(prev_valid):
                    m.d.sync += payload.eq(prev_payload * 3 + 1)
            prev_payload, prev_valid, prev_ready = payload, valid, ready
        return m


class WideWord(data.Struct):
    """A 100-bit struct: ``lo`` 64 bits, ``hi`` 32 bits, ``tag`` 4 bits."""
    lo: 64
    hi: 32
    tag: 4


class WideAdder(wiring.Component):
    """``s = a + b`` registered (``width + 1`` bits), ``x`` copied to ``y`` with ``tag``
    incremented, ``k`` a signed 70-bit pass-through of ``-a`` (combinational).

    Members
    -------
    a, b : In(width)
    s : Out(width + 1)     registered
    x : In(WideWord)
    y : Out(WideWord)      registered
    k : Out(signed(width)) combinational
    count : Out(8)         cycles since reset
    """

    def __init__(self, width=130):
        self.width = check_int("width", width, 1)
        super().__init__({
            "a": In(width), "b": In(width), "s": Out(width + 1),
            "x": In(WideWord), "y": Out(WideWord),
            "k": Out(signed(width)),
            "count": Out(8, init=0),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.s.eq(self.a + self.b)
        m.d.sync += [self.y.lo.eq(self.x.lo), self.y.hi.eq(self.x.hi),
                     self.y.tag.eq(self.x.tag + 1)]
        m.d.comb += self.k.eq(-self.a)
        m.d.sync += self.count.eq(self.count + 1)
        return m
