"""TileArray: an output-stationary array fed from two TileStores that hold each operand
once in its stored orientation and read it as stored or transposed, against
``golden.tile.matmul`` bit for bit (including the three GEMMs of a training step from
one stored copy of X, W and dY); parameter errors."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from support.hyp import budget
from support.systolic import acc_strategy, compare, waits
from support.tile import SHAPES, tile_operand, training_step
from mxhw import golden
from mxhw.golden.arith import fixed
from mxhw.golden.mxsf import mxsf_tile
from mxhw.golden.tile import matmul, transposed_format
from mxhw.systolic.grid import PE_PIPELINE_MAX
from mxhw.systolic.tile import tile_k
from mxhw.systolic.tilearray import TileArray, tile_matmul


def run_tile_array(a, b, ta, tb, rows, cols, acc, gaps=None, pipeline=2):
    """Load ``a`` and ``b`` once into a TileArray, run every output tile of ``op(a) @
    op(b)`` (:func:`tile_matmul`), compare every result with golden bit for bit."""
    rngs = (None, None) if gaps is None else tuple(g.fresh() for g in gaps)
    got = tile_matmul(a, b, acc, ta, tb, rows, cols, pipeline, raw=True, rngs=rngs)
    opa, opb = (a.T if ta else a), (b.T if tb else b)
    compare(got, opa, opb, acc)
    assert np.array_equal(matmul(a, b, acc, transpose_a=ta, transpose_b=tb),
                          golden.arith.gemm(opa, opb, acc), equal_nan=True)


@st.composite
def stored_pair(draw, M, N, nblk):
    """Stored tile operands ``a``, ``b``, flags, and array lanes dividing their tiles."""
    fa = mxsf_tile(*draw(st.sampled_from(SHAPES)))
    fb = mxsf_tile(*draw(st.sampled_from(SHAPES)))
    ta, tb = draw(st.booleans()), draw(st.booleans())
    opa = transposed_format(fa) if ta else fa
    opb = transposed_format(fb) if tb else fb
    K = tile_k(opa, opb) * nblk
    a = draw(tile_operand(fa, (K, M) if ta else (M, K), reserved=True, nan=True))
    b = draw(tile_operand(fb, (N, K) if tb else (K, N), reserved=True, nan=True))
    rows = draw(st.sampled_from([d for d in (1, 2, 4) if math.gcd(*fa.block) % d == 0]))
    cols = draw(st.sampled_from([d for d in (1, 2, 4) if math.gcd(*fb.block) % d == 0]))
    return a, b, ta, tb, rows, cols


@budget(8, suppress_health_check=list(HealthCheck))
@given(data=st.data(), M=st.integers(1, 6), N=st.integers(1, 6), nblk=st.integers(1, 2),
       acc=st.one_of(acc_strategy(), st.just(golden.arith.FP32)),
       gaps=st.tuples(waits(), waits()), pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_tile_array_matches_golden(data, M, N, nblk, acc, gaps, pipeline):
    """Either orientation of each stored operand, fixed or FP32 accumulation, stalls."""
    a, b, ta, tb, rows, cols = data.draw(stored_pair(M, N, nblk))
    run_tile_array(a, b, ta, tb, rows, cols, acc, gaps, pipeline)


def test_training_step():
    """One stored copy of X (8 x 8), W (8 x 4) and dY (8 x 4) in mxsf_tile: Y = X W,
    dX = dY W^T and dW = X^T dY on 2 x 2 tile arrays equal golden.tile.training_gemms."""
    acc, cases = training_step()
    for a, b, ta, tb, want in cases:
        run_tile_array(a, b, ta, tb, 2, 2, acc)
        assert np.array_equal(tile_matmul(a, b, acc, ta, tb), want)   # the float view


@pytest.mark.parametrize("args, kw, exc, msg", [
    ((8, 2, "mxsf_tile", "mxsf_tile", fixed(32, 16)), {}, ValueError,
     "rows / fmt_a / tiles_a: lanes must divide both tile sides 8 x 4 of mxsf_tile, not 8"),
    ((2, 3, "mxsf_tile", "mxsf_tile", fixed(32, 16)), {}, ValueError,
     "cols / fmt_b / tiles_b: lanes must be a power of two, not 3"),
    ((2, 2, "mxsf", "mxsf_tile", fixed(32, 16)), {}, ValueError,
     "rows / fmt_a / tiles_a: fmt: mxsf has no 2-D tiles"),
    ((2, 2, "mxsf_tile", "mxsf_tile", fixed(32, 16)), {"tiles_a": 3}, TypeError,
     "tiles_a must be a pair (tiles down, tiles across), not 3"),
    ((2, 2, "mxsf_tile", "mxsf_tile", fixed(32, 16)), {"transpose_b": 1}, TypeError,
     "transpose_b must be True or False, not 1"),
    ((0, 2, "mxsf_tile", "mxsf_tile", fixed(32, 16)), {}, ValueError,
     "rows must be >= 1, not 0"),
])
def test_init_errors(args, kw, exc, msg):
    with pytest.raises(exc) as e:
        TileArray(*args, **kw)
    assert str(e.value).startswith(msg)


def test_k_block_by_orientation():
    t = "mxsf_tile"
    assert TileArray(2, 2, t, t, fixed(32, 16)).k == 4
    assert TileArray(2, 2, t, t, fixed(32, 16), transpose_b=True).k == 4
    assert TileArray(2, 2, t, t, fixed(32, 16), transpose_a=True).k == 8
