"""TileStore: one stored copy of a tile-format matrix read down columns and along rows
(``lanes`` elements and their tile's scale and mode per read), against the golden
MXArray and its exact transpose ``q.T``; random back-pressure; parameter errors."""

import math

import pytest
from hypothesis import HealthCheck, given, strategies as st

from support.hyp import budget
from support.systolic import waits
from support.tile import SHAPES, tile_operand, tile_words
from mxhw.golden.mxsf import mxsf_tile
from mxhw.mem.tilestore import TileStore
from mxhw.sim import run, stream_recv, stream_send


async def load(ctx, dut, words):
    """Write every tile word, one per cycle."""
    for n, w in enumerate(words):
        ctx.set(dut.w_en, 1)
        ctx.set(dut.w_addr, n)
        ctx.set(dut.w_data, w)
        await ctx.tick()
    ctx.set(dut.w_en, 0)


@st.composite
def store_case(draw):
    """A stored operand, the store's lanes and tile grid, and reads inside the matrix."""
    r, c = draw(st.sampled_from(SHAPES))
    fmt = mxsf_tile(r, c)
    R, C = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    q = draw(tile_operand(fmt, (R, C), reserved=True, nan=True))
    lanes = draw(st.sampled_from([d for d in (1, 2, 4, 8) if math.gcd(r, c) % d == 0]))
    tiles_r, tiles_c = -(-R // r) + draw(st.integers(0, 1)), -(-C // c)
    reads = draw(st.lists(st.tuples(st.integers(0, R - 1), st.integers(0, C - 1),
                                    st.integers(0, 1)), min_size=1, max_size=12))
    # the moving coordinate aligned to lanes
    reads = [(row - row % lanes if a == 0 else row, col - col % lanes if a else col, a)
             for row, col, a in reads]
    return q, lanes, tiles_r, tiles_c, reads


@budget(25, suppress_health_check=list(HealthCheck))
@given(case=store_case(), gaps=st.tuples(waits(), waits()))
def test_reads_equal_golden(case, gaps):
    """Every read: the codes, scale and mode golden's MXArray holds there; a row-wise read
    of ``q`` is the column-wise read of golden's ``q.T``."""
    q, lanes, tiles_r, tiles_c, reads = case
    dut = TileStore(q.fmt, tiles_r, tiles_c, lanes)
    r, c = q.fmt.block
    got = []

    async def producer(ctx):
        await load(ctx, dut, tile_words(q, tiles_r, tiles_c))
        await stream_send(ctx, dut.req, [{"row": a, "col": b, "along": s}
                                         for a, b, s in reads], gaps[0].fresh(), 0.5)

    async def consumer(ctx):
        for p in await stream_recv(ctx, dut.resp, len(reads), gaps[1].fresh(), 0.5):
            got.append(([int(x) for x in p.codes], int(p.scale), int(p.mode)))

    run(dut, producer, consumer)
    qt = q.T
    R, C = q.shape
    for (row, col, along), (codes, scale, mode) in zip(reads, got):
        if along == 0:                         # down column col of q: row col of q.T
            want = [int(qt.elements[col, row + i]) if row + i < R else 0
                    for i in range(lanes)]
            assert [int(q.elements[row + i, col]) if row + i < R else 0
                    for i in range(lanes)] == want
        else:
            want = [int(q.elements[row, col + i]) if col + i < C else 0
                    for i in range(lanes)]
        assert codes == want, (row, col, along)
        assert scale == q.scales[row // r, col // c] == qt.scales[col // c, row // r]
        assert mode == q.modes[row // r, col // c] == qt.modes[col // c, row // r]


def test_init():
    dut = TileStore("mxsf_tile", 2, 3, lanes=4)
    assert dut.lanes == 4 and dut.tiles == (2, 3) and dut.fmt.block == (8, 4)
    assert len(dut.resp.payload.codes) == 4


@pytest.mark.parametrize("args, exc, msg", [
    (("mxsf", 1, 1), ValueError, "fmt: mxsf has no 2-D tiles (block 32); a TileStore holds "
                                 "tile formats such as 'mxsf_tile'"),
    (("mxsf_tile", 0, 1), ValueError, "tiles_r must be >= 1, not 0"),
    (("mxsf_tile", 1, 1.5), TypeError, "tiles_c must be an integer, not 1.5"),
    (("mxsf_tile", 1, 1, 3), ValueError, "lanes must be a power of two, not 3"),
    (("mxsf_tile", 1, 1, 8), ValueError, "lanes must divide both tile sides 8 x 4 of "
                                         "mxsf_tile, not 8"),
    ((mxsf_tile(6, 4), 1, 1), ValueError, "fmt: tile rows must be a power of two, not 6"),
    ((3, 1, 1), TypeError, "fmt must be a block format"),
])
def test_init_errors(args, exc, msg):
    with pytest.raises(exc) as e:
        TileStore(*args)
    assert str(e.value).startswith(msg)
