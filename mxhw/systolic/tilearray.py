"""A tile-capable GEMM: an output-stationary :class:`~mxhw.systolic.SystolicArray` fed from
two :class:`~mxhw.mem.tilestore.TileStore` operand memories that hold each operand once,
in its stored orientation, and read it as stored or transposed."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..formats import lookup_format
from ..golden.tile import transposed_format
from ..lib.params import check_bool, check_int
from ..mem.tilestore import TileStore, tile_word_layout
from .array import DEFAULT_PIPELINE, SystolicArray

__all__ = ["TileArray", "tile_words", "tile_matmul"]


class TileArray(wiring.Component):
    """``C = op(A) @ op(B)`` on an output-stationary ``rows x cols`` array, the operands
    held once in tile-format memories (``mxsf_tile``) in their stored orientation and read
    transposed where ``transpose_a`` / ``transpose_b`` ask: the forward ``X W`` and the
    input gradient ``dY W^T`` read the same stored ``W``.

    The array's K block is golden's (:func:`~mxhw.systolic.tile.tile_k` of the read
    formats, ``op(A)``'s tile width against ``op(B)``'s tile height): each K step the two
    stores serve ``rows`` codes of ``op(A)``'s column and ``cols`` codes of ``op(B)``'s row,
    and their tiles' scales and modes replicated over the lanes.

    Parameters
    ----------
    rows, cols : int
        Array shape; ``rows`` must divide both sides of A's tiles, ``cols`` of B's.
    fmt_a, fmt_b : str or BlockFormat
        The operands' stored tile formats (power-of-two tile sides).
    acc : golden.arith.Accumulation
        ``fixed`` or ``fp32``.
    transpose_a, transpose_b : bool
        Read the stored operand transposed (fixed at elaboration: the orientation sets the
        array's K block).
    tiles_a, tiles_b : (int, int)
        Tiles down and across each stored operand (its memory's size).
    pipeline : int
        The array's register stages.

    Members
    -------
    a_w_en, a_w_addr, a_w_data, b_w_en, b_w_addr, b_w_data
        The stores' write ports (:class:`~mxhw.mem.tilestore.TileStore`; a tile per word).
    cmd : In(stream.Signature(m0, n0, k))
        One output tile: rows ``m0 ..`` and columns ``n0 ..`` of ``C`` over ``k`` K steps
        (``k`` a multiple of the K block; ``m0`` a multiple of ``rows``, ``n0`` of ``cols``).
    o : Out(stream.Signature(out_layout))
        The array's result rows (``rows`` per command).

    Latency: the array's plus one cycle (the stores' read); one K step per cycle.
    Golden twin: :func:`mxhw.golden.tile.matmul` with the same flags and ``acc``.

    Raises
    ------
    TypeError, ValueError
        A bad parameter (the message names it).
    """

    def __init__(self, rows, cols, fmt_a, fmt_b, acc, transpose_a=False, transpose_b=False,
                 tiles_a=(1, 1), tiles_b=(1, 1), pipeline=DEFAULT_PIPELINE):
        check_int("rows", rows, 1)
        check_int("cols", cols, 1)
        check_bool("transpose_a", transpose_a)
        check_bool("transpose_b", transpose_b)
        fa = lookup_format(fmt_a, "fmt_a", "block")
        fb = lookup_format(fmt_b, "fmt_b", "block")
        for name, t in (("tiles_a", tiles_a), ("tiles_b", tiles_b)):
            if not (isinstance(t, tuple) and len(t) == 2):
                raise TypeError(f"{name} must be a pair (tiles down, tiles across), not "
                                f"{t!r}")
        try:
            self._sa = TileStore(fa, *tiles_a, lanes=rows)
        except ValueError as e:
            raise ValueError(f"rows / fmt_a / tiles_a: {e}") from None
        try:
            self._sb = TileStore(fb, *tiles_b, lanes=cols)
        except ValueError as e:
            raise ValueError(f"cols / fmt_b / tiles_b: {e}") from None
        opa = transposed_format(fa) if transpose_a else fa
        opb = transposed_format(fb) if transpose_b else fb
        self._array = SystolicArray(rows, cols, opa, opb, acc=acc, pipeline=pipeline)
        self._t = (transpose_a, transpose_b)
        la, lb = self._sa.req.payload.shape(), self._sb.req.payload.shape()
        # op(A) rows run along A's stored rows (or columns, transposed); likewise B's
        m_w = (la["col"] if transpose_a else la["row"]).shape.width
        n_w = (lb["row"] if transpose_b else lb["col"]).shape.width
        k_w = max((la["row"] if transpose_a else la["col"]).shape.width,
                  (lb["col"] if transpose_b else lb["row"]).shape.width) + 1
        super().__init__({
            "a_w_en": In(1), "a_w_addr": In(range(tiles_a[0] * tiles_a[1])),
            "a_w_data": In(tile_word_layout(fa)),
            "b_w_en": In(1), "b_w_addr": In(range(tiles_b[0] * tiles_b[1])),
            "b_w_data": In(tile_word_layout(fb)),
            "cmd": In(stream.Signature(data.StructLayout({
                "m0": unsigned(m_w), "n0": unsigned(n_w), "k": unsigned(k_w)}))),
            "o": Out(stream.Signature(self._array.out_layout)),
        })

    array = property(lambda self: self._array, doc="The :class:`SystolicArray` inside.")
    k = property(lambda self: self._array.k, doc="The K block.")
    latency = property(lambda self: self._array.latency + 1)

    def elaborate(self, platform):
        m = Module()
        sa, sb, arr = self._sa, self._sb, self._array
        m.submodules.store_a, m.submodules.store_b, m.submodules.array = sa, sb, arr
        ta, tb = self._t
        for s, p in ((sa, "a"), (sb, "b")):
            m.d.comb += [s.w_en.eq(getattr(self, f"{p}_w_en")),
                         s.w_addr.eq(getattr(self, f"{p}_w_addr")),
                         s.w_data.eq(getattr(self, f"{p}_w_data"))]

        # the sequencer: a command's K steps as paired reads of the two stores
        busy = Signal()
        kk = Signal.like(self.cmd.payload.k)
        cmd = Signal.like(self.cmd.payload)
        last_q = Signal()                       # the read in the stores' output is the last
        m.d.comb += self.cmd.ready.eq(~busy)
        with m.If(self.cmd.valid & ~busy):
            m.d.sync += [cmd.eq(self.cmd.payload), kk.eq(0),
                         busy.eq(self.cmd.payload.k != 0)]
        ra, rb = sa.req.payload, sb.req.payload
        if ta:      # op(A)[m0 + i, kk] = A[kk, m0 + i]: along A's row kk
            m.d.comb += [ra.row.eq(kk), ra.col.eq(cmd.m0), ra.along.eq(1)]
        else:       # down A's column kk
            m.d.comb += [ra.row.eq(cmd.m0), ra.col.eq(kk), ra.along.eq(0)]
        if tb:      # op(B)[kk, n0 + j] = B[n0 + j, kk]: down B's column kk
            m.d.comb += [rb.row.eq(cmd.n0), rb.col.eq(kk), rb.along.eq(0)]
        else:       # along B's row kk
            m.d.comb += [rb.row.eq(kk), rb.col.eq(cmd.n0), rb.along.eq(1)]
        # the stores run in lockstep (their answers are taken together, below), so their
        # ready signals are equal: both requests fire together, valid never waits on ready
        m.d.comb += [sa.req.valid.eq(busy), sb.req.valid.eq(busy)]
        with m.If(busy & sa.req.ready):
            m.d.sync += [kk.eq(kk + 1), last_q.eq(kk == cmd.k - 1)]
            with m.If(kk == cmd.k - 1):
                m.d.sync += busy.eq(0)

        # the two stores answer in lockstep: one array transfer per pair
        beat = arr.i.payload
        pa, pb = sa.resp.payload, sb.resp.payload
        m.d.comb += [arr.i.valid.eq(sa.resp.valid & sb.resp.valid),
                     sa.resp.ready.eq(arr.i.ready & sb.resp.valid),
                     sb.resp.ready.eq(arr.i.ready & sa.resp.valid),
                     beat.last.eq(last_q)]
        for i in range(arr.rows):
            m.d.comb += [beat.a[i].eq(pa.codes[i]), beat.a_scale[i].eq(pa.scale)]
            if arr.fmt_a.mode_bits:
                m.d.comb += beat.a_mode[i].eq(pa.mode)
        for j in range(arr.cols):
            m.d.comb += [beat.b[j].eq(pb.codes[j]), beat.b_scale[j].eq(pb.scale)]
            if arr.fmt_b.mode_bits:
                m.d.comb += beat.b_mode[j].eq(pb.mode)
        wiring.connect(m, arr.o, wiring.flipped(self.o))
        return m


# ---- host side: load the stores and run a product in simulation ----------------------------

def tile_words(q, tiles_r, tiles_c):
    """The stored tiles of ``q`` (a 2-D tile-format ``golden.MXArray``) as words for a
    :class:`~mxhw.mem.tilestore.TileStore` of ``tiles_r x tiles_c`` tiles (row-major tile
    index; codes beyond the matrix and tiles beyond ``q`` are 0, a zero in every MXSF
    mode)."""
    import numpy as np
    r, c = q.fmt.block
    el = np.zeros((tiles_r * r, tiles_c * c), dtype=np.int64)
    el[:q.shape[0], :q.shape[1]] = q.elements
    words = []
    for ti in range(tiles_r):
        for tj in range(tiles_c):
            inside = ti < q.scales.shape[0] and tj < q.scales.shape[1]
            words.append({"codes": [int(v) for v in el[ti * r:(ti + 1) * r,
                                                      tj * c:(tj + 1) * c].ravel()],
                          "scale": int(q.scales[ti, tj]) if inside else 0,
                          "mode": int(q.modes[ti, tj]) if inside and q.modes is not None
                          else 0})
    return words


def tile_matmul(a, b, acc, transpose_a=False, transpose_b=False, rows=2, cols=2,
                pipeline=2, raw=False, **sim):
    """``op(a) @ op(b)`` on a simulated :class:`TileArray` (Amaranth's simulator through
    :func:`mxhw.sim.run`): ``a`` and ``b`` (tile-format ``golden.MXArray``, each in its
    stored orientation) are written once into the two stores, then one command per output
    tile. Returns a float64 array as :func:`golden.tile.matmul` gives it (``fixed``:
    ``acc_int * 2**-frac_bits``; ``fp32``: the float32 values; NaN where the result is
    special), or with ``raw`` the ``{(m, n): (data, special)}`` the array sent."""
    import numpy as np
    from ..sim import run, stream_recv, stream_send
    from .driver import tile_order

    tiles = {p: tuple(int(n) for n in q.scales.shape) for p, q in (("a", a), ("b", b))}
    dut = TileArray(rows, cols, a.fmt, b.fmt, acc, transpose_a=transpose_a,
                    transpose_b=transpose_b, tiles_a=tiles["a"], tiles_b=tiles["b"],
                    pipeline=pipeline)
    M = a.shape[1] if transpose_a else a.shape[0]
    K = a.shape[0] if transpose_a else a.shape[1]
    N = b.shape[0] if transpose_b else b.shape[1]
    order = tile_order(M, N, rows, cols)
    rng_i, rng_o = sim.pop("rngs", (None, None))
    got = {}

    async def producer(ctx):
        for p, q in (("a", a), ("b", b)):
            for n, w in enumerate(tile_words(q, *tiles[p])):
                ctx.set(getattr(dut, f"{p}_w_en"), 1)
                ctx.set(getattr(dut, f"{p}_w_addr"), n)
                ctx.set(getattr(dut, f"{p}_w_data"), w)
                await ctx.tick()
            ctx.set(getattr(dut, f"{p}_w_en"), 0)
        await stream_send(ctx, dut.cmd, [{"m0": m0, "n0": n0, "k": K} for m0, n0 in order],
                          rng_i, 0.5 if rng_i else 0.0)

    async def consumer(ctx):
        for m0, n0 in order:
            for i, r in enumerate(await stream_recv(ctx, dut.o, rows, rng_o,
                                                    0.5 if rng_o else 0.0,
                                                    timeout=20_000)):
                for j in range(cols):
                    if m0 + i < M and n0 + j < N:
                        got[m0 + i, n0 + j] = (int(r.data[j]), int(r.special[j]))

    run(dut, producer, consumer, **sim)
    if raw:
        return got
    out = np.zeros((M, N), dtype=np.float64)
    for (mm, nn), (d, s) in got.items():
        if s:
            out[mm, nn] = np.nan
        elif acc.mode == "fp32":
            out[mm, nn] = float(np.uint32(d & 0xFFFF_FFFF).view(np.float32))
        else:
            out[mm, nn] = float(np.ldexp(float(d), -acc.frac_bits))
    return out
