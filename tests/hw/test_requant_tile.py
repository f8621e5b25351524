"""Requantizer with 2-D tile output (``mxsf_tile``): a tensor fed tile by tile (one tile per
block, row-major within the tile) gives golden.quantize(x, "mxsf_tile")'s codes, scales and
modes; adversarial tiles (zeros, mode ties, saturation, mode S wins); bad parameters."""

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.dequant import Requantizer
from mxhw.dequant.requant_tile import tile_blocks, untile
from mxhw.golden.mxsf import mxsf_tile
from support.hyp import budget
from support.pe import f32_blocks, fixed_blocks, requant_input, requant_run, waits

QUIET_SNAN = pytest.mark.filterwarnings("ignore:invalid value encountered in cast")


def place(blocks, r, c, mb, nb):
    """The tensor whose tile (ti, tj) (row-major over the grid) holds ``blocks[ti * nb +
    tj]`` row-major: element j at row ti * r + j // c, column tj * c + j % c (the
    documented order, written out independently of requant_tile)."""
    x = np.zeros((mb * r, nb * c), dtype=np.asarray(blocks).dtype)
    for t, blk in enumerate(blocks):
        ti, tj = divmod(t, nb)
        for j, v in enumerate(blk):
            x[ti * r + j // c, tj * c + j % c] = v
    return x


def check_tiles(dut, x, idle=0, stall=0):
    """Feed tensor ``x`` (fixed-point integers or float32 bit patterns) tile by tile and
    compare every tile's scale, mode and codes with golden on the whole tensor."""
    r, c = dut.tile
    mb, nb = x.shape[0] // r, x.shape[1] // c
    blocks = tile_blocks(x, dut.fmt)
    assert blocks.shape == (mb * nb, r * c)
    vals = requant_input(dut, blocks.tolist()).reshape(-1)
    xv = np.zeros(x.shape)
    for t in range(mb * nb):                       # the values golden sees, placed by hand
        ti, tj = divmod(t, nb)
        for j in range(r * c):
            xv[ti * r + j // c, tj * c + j % c] = vals[t * r * c + j]
    q = golden.quantize(xv, dut.fmt)
    got = requant_run(dut, blocks.tolist(), idle, stall)
    assert len(got) == mb * nb
    codes = []
    for t, p in enumerate(got):
        ti, tj = divmod(t, nb)
        blk = [int(e) for e in p.elements]
        want = [int(q.elements[ti * r + j // c, tj * c + j % c]) for j in range(r * c)]
        assert (p.scale, p.mode, blk) == (int(q.scales[ti, tj]), int(q.modes[ti, tj]), want), \
            (t, blocks[t].tolist())
        codes.append(blk)
    assert (untile(codes, dut.fmt, x.shape) == q.elements).all()
    return q


TILES = [(1, 2), (2, 2), (2, 4), (4, 2), (1, 4)]


@budget(20)
@given(st.sampled_from(TILES), st.integers(1, 3), st.integers(1, 3), st.booleans(),
       st.integers(2, 7), st.data(), waits(), waits())
@QUIET_SNAN
def test_tiles_vs_golden(tile, mb, nb, fp32, pipeline, data, idle, stall):
    """Random tensors of mb x nb tiles (fixed point or float32: zeros, extremes, one large
    value with small ones (ties, underflow, mode S), NaN/Inf), fed tile by tile."""
    r, c = tile
    fmt = mxsf_tile(r, c)
    if fp32:
        dut = Requantizer(fmt, in_kind="fp32", pipeline=pipeline)
        blk = f32_blocks(r * c)
    else:
        w = data.draw(st.integers(2, 30))
        dut = Requantizer(fmt, in_width=w, in_frac=data.draw(st.integers(-8, 40)),
                          pipeline=pipeline)
        blk = fixed_blocks(r * c, w)
    assert dut.k == r * c and dut.tile == tile and dut.fmt is fmt
    blocks = data.draw(st.lists(blk, min_size=mb * nb, max_size=mb * nb))
    check_tiles(dut, place(blocks, r, c, mb, nb), idle, stall)


def mode_errors(x, fmt):
    """Exact squared error per tile of each MXSF mode alone (golden, one candidate)."""
    errs = []
    for cand in fmt.candidates:
        y = golden.quantize(x, dataclasses.replace(fmt, candidates=(cand,))).dequantize()
        errs.append(sum((Fraction(float(a)) - Fraction(float(b))) ** 2
                        for a, b in zip(x.ravel(), y.ravel())))
    return errs


@pytest.mark.parametrize("in_kind", ["fixed", "fp32"])
def test_mxsf_tile_adversarial(in_kind):
    """The registered mxsf_tile (8 x 4, k = 32) on a 16 x 8 tensor of four adversarial
    tiles: all zeros; an exact mode tie (ties go to W); values that saturate mode W and
    round up at mode S's maximum; one large value with small ones (mode S wins)."""
    zeros = [0.0] * 32
    # errors 4 * 2**-16 in both modes: 2**-8 ties to 0 in W, 2**-4 + 2**-7 ties in S
    tie = [1.0] + [2.0**-8] * 4 + [2.0**-4 + 2.0**-7] + [0.5, -0.25] + [0.0] * 24
    sat = [7.99, -7.99, 7.9, 3.99, -1.0, 27.9 / 4, 0.0, 2.0**-9] * 4
    s_wins = [112.0] + [0.25, 0.3125, -0.375, 0.0, -0.5, 0.3] * 5 + [-0.25]
    blocks = [zeros, tie, sat, s_wins]
    x = place(blocks, 8, 4, 2, 2)
    tie_x = x[:8, 4:]
    ew, es = mode_errors(tie_x, golden.formats.get("mxsf_tile"))
    assert ew == es > 0
    frac = 12
    if in_kind == "fp32":
        dut = Requantizer("mxsf_tile", in_kind="fp32", pipeline=3)
        ins = x.astype(np.float32).view(np.uint32)
    else:
        dut = Requantizer("mxsf_tile", in_width=24, in_frac=frac, pipeline=3)
        ins = np.round(np.ldexp(x, frac)).astype(np.int64)
    q = check_tiles(dut, ins, 3, 3)
    assert q.modes.tolist() == [[0, 0], [0, 1]]
    sat_y = q.dequantize()[8:, :4]
    assert sat_y.max() == 7.875 and sat_y.min() == -7.875     # saturated in W (scale 1)


def test_transposed_tile():
    """mxsf_tile(4, 8) (the transposed tile) on the transposed tensor gives the transposed
    codes of mxsf_tile on the tensor (golden.tile), tile by tile through the hardware."""
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(size=(8, 16)) * 64).astype(np.int64)
    dut = Requantizer(mxsf_tile(4, 8), in_width=16, in_frac=6, pipeline=2)
    q = check_tiles(dut, x.T.copy(), 2, 2)
    qt = golden.quantize(np.ldexp(x.astype(float), -6), "mxsf_tile").T
    assert (q.elements == qt.elements).all() and (q.scales == qt.scales).all()


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"fmt": "mxsf_tile", "k": 16}, ValueError,
     "k must be the tile size of mxsf_tile, 8 x 4 = 32 elements (one tile per block), not 16"),
    ({"fmt": mxsf_tile(2, 2), "k": 8}, ValueError,
     "k must be the tile size of mxsf_tile2x2, 2 x 2 = 4 elements (one tile per block), "
     "not 8"),
    ({"fmt": "mxsf_tile", "k": 2.0}, TypeError, "k must be an integer, not 2.0"),
])
def test_bad_tile_params(kwargs, exc, msg):
    with pytest.raises(exc) as info:
        Requantizer(**kwargs)
    assert str(info.value) == msg


@pytest.mark.parametrize("shape", [(8, 6), (6, 4), (4,)])
def test_tile_blocks_bad_shape(shape):
    with pytest.raises(ValueError, match=r"is not made of whole 8 x 4 tiles of mxsf_tile"):
        tile_blocks(np.zeros(shape), golden.formats.get("mxsf_tile"))


def test_tile_blocks_needs_tile_format():
    with pytest.raises(ValueError, match="fmt must be a 2-D tile format such as 'mxsf_tile', "
                                         "not 'mxsf'"):
        tile_blocks(np.zeros((8, 32)), golden.formats.get("mxsf"))


def test_k_matching_tile_still_deprecated():
    with pytest.warns(DeprecationWarning):
        assert Requantizer("mxsf_tile", k=32, pipeline=2).k == 32
