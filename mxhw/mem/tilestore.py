"""A tile operand memory that serves one stored copy of a tile-format matrix (``mxsf_tile``)
in either orientation: the "second orientation" of MX-SAFE training (W forward, W^T for
the input gradient, from the same stored codes)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..formats import lookup_format
from ..lib.params import check_int, check_pow2

__all__ = ["TileStore", "tile_word_layout", "tile_codes", "tile_code_bits"]


def tile_code_bits(fmt):
    """Bits of one stored element code of ``fmt`` (the widest of its modes' codes)."""
    return max(c.bits for c in fmt.candidates)


def tile_word_layout(fmt):
    """One stored tile of the 2-D tile format ``fmt`` (``r x c``): ``codes`` (``r * c``
    element codes, row-major), ``scale`` (its scale code) and ``mode`` (its element mode,
    1 bit wide for a single-mode format)."""
    r, c = fmt.block
    return data.StructLayout({
        "codes": data.ArrayLayout(unsigned(tile_code_bits(fmt)), r * c),
        "scale": unsigned(fmt.scale.bits),
        "mode": unsigned(max(fmt.mode_bits, 1)),
    })


class TileStore(wiring.Component):
    """A matrix of up to ``tiles_r x tiles_c`` tiles of the 2-D tile format ``fmt``, one
    memory word per tile (:func:`tile_word_layout`), read as ``lanes`` consecutive
    elements down a column (``along = 0``) or along a row (``along = 1``) with their
    tile's scale and mode: an operand read row-wise for ``X`` and column-wise for ``X^T``
    from the same stored tiles.

    Parameters
    ----------
    fmt : str or BlockFormat
        A format with 2-D tiles ``(r, c)`` of powers of two (``mxsf_tile``: 8 x 4).
    tiles_r, tiles_c : int
        Tiles down and across the largest matrix held, >= 1.
    lanes : int
        Elements per read, a power of two dividing both ``r`` and ``c`` (so every read
        lies in one tile, whichever the orientation).

    Members
    -------
    w_en : In(1), w_addr : In(range(tiles_r * tiles_c)), w_data : In(tile_word_layout)
        Write tile ``w_addr`` (row-major tile index ``ti * tiles_c + tj``).
    req : In(stream.Signature(row, col, along))
        A read of the elements ``(row + i, col)`` (``along = 0``) or ``(row, col + i)``
        (``along = 1``) for ``i < lanes``; the moving coordinate a multiple of ``lanes``.
    resp : Out(stream.Signature(codes, scale, mode))
        ``codes[i]`` the element codes, ``scale`` and ``mode`` of the tile they lie in.

    Latency 1 cycle (a synchronous block-RAM read), one read per cycle while ``resp`` is
    ready. Golden twin: the same element, scale and mode of the ``golden.MXArray`` (or of
    its exact transpose ``q.T``, :func:`golden.tile.transpose`).

    Raises
    ------
    TypeError, ValueError
        A bad parameter (the message names it).
    """

    def __init__(self, fmt, tiles_r, tiles_c, lanes=1):
        fmt = lookup_format(fmt, "fmt", "block")
        if not isinstance(fmt.block, tuple):
            raise ValueError(f"fmt: {fmt.name} has no 2-D tiles (block {fmt.block!r}); a "
                             f"TileStore holds tile formats such as 'mxsf_tile'")
        r, c = fmt.block
        check_pow2("fmt: tile rows", r)
        check_pow2("fmt: tile cols", c)
        check_int("tiles_r", tiles_r, 1)
        check_int("tiles_c", tiles_c, 1)
        check_pow2("lanes", lanes)
        if r % lanes or c % lanes:
            raise ValueError(f"lanes must divide both tile sides {r} x {c} of {fmt.name}, "
                             f"not {lanes}")
        self._fmt, self._tiles, self._lanes = fmt, (tiles_r, tiles_c), lanes
        layout = tile_word_layout(fmt)
        super().__init__({
            "w_en": In(1),
            "w_addr": In(range(tiles_r * tiles_c)),
            "w_data": In(layout),
            "req": In(stream.Signature(data.StructLayout({
                "row": unsigned(max((tiles_r * r - 1).bit_length(), 1)),
                "col": unsigned(max((tiles_c * c - 1).bit_length(), 1)),
                "along": unsigned(1)}))),
            "resp": Out(stream.Signature(data.StructLayout({
                "codes": data.ArrayLayout(unsigned(tile_code_bits(fmt)), lanes),
                "scale": unsigned(fmt.scale.bits),
                "mode": unsigned(max(fmt.mode_bits, 1))}))),
        })

    fmt = property(lambda self: self._fmt)
    lanes = property(lambda self: self._lanes)
    tiles = property(lambda self: self._tiles, doc="``(tiles_r, tiles_c)``.")
    latency = 1

    def elaborate(self, platform):
        m = Module()
        r, c = self._fmt.block
        tr, tc = self._tiles
        lr, lc = (r - 1).bit_length(), (c - 1).bit_length()
        layout = tile_word_layout(self._fmt)
        m.submodules.mem = mem = Memory(shape=layout, depth=tr * tc, init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=())
        m.d.comb += [wp.en.eq(self.w_en), wp.addr.eq(self.w_addr), wp.data.eq(self.w_data)]

        req = self.req.payload
        m.d.comb += rp.addr.eq((req.row >> lr) * tc + (req.col >> lc))
        # the read's position in its tile, registered beside the memory's read
        i0 = Signal(range(r))
        j0 = Signal(range(c))
        along = Signal()
        fire = self.req.valid & (~self.resp.valid | self.resp.ready)
        m.d.comb += [self.req.ready.eq(~self.resp.valid | self.resp.ready), rp.en.eq(fire)]
        with m.If(fire):
            m.d.sync += [i0.eq(req.row[:lr] if lr else 0), j0.eq(req.col[:lc] if lc else 0),
                         along.eq(req.along), self.resp.valid.eq(1)]
        with m.Elif(self.resp.ready):
            m.d.sync += self.resp.valid.eq(0)

        word = rp.data
        for i, code in enumerate(tile_codes(m, word.codes, i0, j0, along, r, c,
                                            self._lanes)):
            m.d.comb += self.resp.payload.codes[i].eq(code)
        m.d.comb += [self.resp.payload.scale.eq(word.scale),
                     self.resp.payload.mode.eq(word.mode)]
        return m


def tile_codes(m, codes, i0, j0, along, r, c, lanes, name="idx"):
    """Gateware: ``lanes`` element codes of one stored ``r x c`` tile (``codes``: its
    ``r * c`` codes, row-major, indexable by a Value) from position ``(i0, j0)`` down a
    column (``along = 0``: ``(i0 + i, j0)``) or along a row (``along = 1``: ``(i0, j0 +
    i)``): the tile read as stored or transposed, a multiplexer per lane."""
    out = []
    for i in range(lanes):
        down = (i0 + i) * c + j0           # along = 0: element (i0 + i, j0)
        across = i0 * c + j0 + i           # along = 1: element (i0, j0 + i)
        out.append(codes[_pick(m, along, down, across, r * c, f"{name}{i}")])
    return out


def _pick(m, sel, a, b, n, name):
    """An index signal (``range(n)``): ``b`` when ``sel``, else ``a``."""
    idx = Signal(range(n), name=name)
    with m.If(sel):
        m.d.comb += idx.eq(b)
    with m.Else():
        m.d.comb += idx.eq(a)
    return idx
