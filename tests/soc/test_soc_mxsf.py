"""MXSF activations on the SoC: the A-scale memory holds each block's mode beside its
scale (:mod:`mxhw.soc.ascale`), the activation path re-quantises layer results to MXSF
with the mode chosen as golden chooses it, and the next layer reads them. Expectations
come from golden (``golden.chain``, ``golden.gemm``, ``golden.quantize``)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from mxhw import golden
from mxhw.golden.chain import linear
from mxhw.soc.ascale import entry_bits, pack_entries, unpack_entries
from mxhw.soc.driver import Accelerator
from mxhw.soc.gemm import GemmUnit
from mxhw.soc.top import SoCConfig
from support.hyp import budget
from support.soc import chain_layers, run_chain

CFG = SoCConfig(rows=2, cols=8, fmt_a="mxsf", fmt_b="mxfp4", max_k=64, a_tiles=8,
                b_tiles=32, c_tiles=16, prog_words=16, out_fmt="mxsf")
FIXTURE = dict(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@pytest.fixture(scope="module")
def acc():
    with Accelerator.simulated(CFG) as a:
        yield a


def _spread_chain(seed, e):
    """A two-layer chain whose blocks take both modes: x with an outlier per block of 32,
    weights whose output columns 1.. are ``2**-e`` times column 0's."""
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((3, 64))
    xs[:, ::32] *= 2 ** 7
    ws1 = rng.standard_normal((64, 32))
    ws1[:, 1:] *= 2.0 ** -e
    ws2 = rng.standard_normal((32, 32))
    ws2[:, 1:] *= 2.0 ** -e
    return (golden.quantize(xs, "mxsf", axis=1),
            [(golden.quantize(ws1, "mxfp4", axis=0), "mxsf"),
             (golden.quantize(ws2, "mxfp4", axis=0), "mxsf")])


def test_both_modes_through_two_layers(acc):
    """A chain where golden picks mode S for some blocks and mode W for others, of the
    input and of the on-chip activations: codes, scales and modes equal golden.chain."""
    x, layers = _spread_chain(1, 7)
    h1 = linear(x, layers[0][0], CFG.acc, "mxsf")
    y = linear(h1, layers[1][0], CFG.acc, "mxsf")
    assert set(x.modes.ravel()) == {0, 1}
    assert set(h1.modes.ravel()) == {0, 1} or set(y.modes.ravel()) == {0, 1}
    cycles = run_chain(acc, CFG, x, layers)
    assert len(cycles["per_instruction"]) == 3


@budget(3, **FIXTURE)
@given(data=st.data())
def test_random_mxsf_chains_equal_golden(acc, data):
    """Random chains of 1-3 layers with MXSF activations drawn as codes and modes (every
    mode, scales over 2**-4 .. 2**4), re-quantised to MXSF on chip: equal to
    golden.chain bit for bit (codes, scales, modes; or the fixed-point values)."""
    x, layers = data.draw(chain_layers(CFG, max_layers=3))
    run_chain(acc, CFG, x, layers)


@budget(3, **FIXTURE)
@given(data=st.data())
def test_matmul_with_mxsf_activations(acc, data):
    """The register-driven matmul reads MXSF A tiles (modes from the host's upload)."""
    from support.soc import mx_operands, _finite
    M = data.draw(st.integers(1, 5))
    K = data.draw(st.sampled_from([32, 64]))
    N = data.draw(st.integers(1, 10))
    a = _finite(data.draw(mx_operands("mxsf", (M, K), 1, nan=False)))
    b = _finite(data.draw(mx_operands("mxfp4", (K, N), 0, nan=False)))
    np.testing.assert_array_equal(acc.matmul(a, b), golden.gemm(a, b, CFG.acc))


@budget(20)
@given(st.data())
def test_scale_entries_round_trip(data):
    """The host's A-scale entries: scale and mode unpack to what was packed; a format
    without modes keeps its plain scale codes."""
    sf, f4 = golden.formats.get("mxsf"), golden.formats.get("mxfp4")
    shape = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    sc = np.array(data.draw(st.lists(st.integers(0, 255), min_size=shape[0] * shape[1],
                                     max_size=shape[0] * shape[1]))).reshape(shape)
    md = np.array(data.draw(st.lists(st.integers(0, 1), min_size=sc.size,
                                     max_size=sc.size))).reshape(shape)
    e = pack_entries(sc, md, sf)
    assert (e < 1 << entry_bits(sf)).all()
    s2, m2 = unpack_entries(e, sf)
    assert np.array_equal(s2, sc) and np.array_equal(m2, md)
    assert np.array_equal(pack_entries(sc, None, f4), sc)
    assert unpack_entries(sc, f4)[1] is None


def test_scale_entries_need_modes():
    with pytest.raises(ValueError, match="mxsf A scales need one mode per block"):
        pack_entries(np.zeros((2, 2), dtype=np.int64), None, golden.formats.get("mxsf"))


@pytest.mark.parametrize("kw,match", [
    (dict(fmt_b="mxsf"), "fmt_b='mxsf': a format with block modes is an output-stationary "
                         "unit's fmt_a only"),
    (dict(fmt_a="mxsf", dataflow="weight_stationary"),
     "fmt_a='mxsf': a format with block modes is an output-stationary unit's fmt_a only"),
    (dict(fmt_a="mxsf", prog_words=8, out_fmt="mxfp4"), "out_fmt must be fmt_a"),
])
def test_mxsf_refused_where_the_memories_hold_no_modes(kw, match):
    with pytest.raises(ValueError, match=match):
        SoCConfig(**kw)
    args = dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxfp4", acc=SoCConfig().acc,
                max_k=32) | kw
    with pytest.raises(ValueError, match=match):
        GemmUnit(**args)


def test_driver_refuses_other_activation_formats(acc):
    x = np.ones((2, 32))
    with pytest.raises(ValueError, match="activation format 'mxfp8_e4m3' is not built on "
                                         "this device: it takes 'mxsf'"):
        acc.upload(x, fmt="mxfp8_e4m3")
    assert acc.layer_caps()["out_fmt"] == "mxsf" and acc.gemm_config()["fmt_a"] == "mxsf"
