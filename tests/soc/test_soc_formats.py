"""Every format pair the SoC can be built with: matmul on the simulated SoC equals golden."""

import itertools

import numpy as np
import pytest

from mxhw import golden
from mxhw.soc.driver import Accelerator
from mxhw.soc.regmap import FORMAT_IDS
from mxhw.soc.top import SoCConfig

#: every pair of single-mode formats, and MXSF activations (an output-stationary unit's
#: fmt_a only: its A-scale memory holds the block modes) against two weight formats
SINGLE = sorted(f for f in FORMAT_IDS if not golden.formats.get(f).mode_bits)
PAIRS = list(itertools.product(SINGLE, repeat=2)) + [("mxsf", "mxfp4_e2m1"),
                                                      ("mxsf", "mxint8")]


def test_every_format_id_is_a_golden_block_format():
    assert set(FORMAT_IDS) <= set(golden.formats.block_names())


@pytest.mark.parametrize("fmt_a, fmt_b", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_matmul_every_format_pair(fmt_a, fmt_b):
    cfg = SoCConfig(rows=1, cols=2, fmt_a=fmt_a, fmt_b=fmt_b, max_k=64,
                    acc_width=40, acc_frac=20)
    acc = Accelerator.simulated(cfg)
    assert (acc.gemm_config()["fmt_a"], acc.gemm_config()["fmt_b"]) == (fmt_a, fmt_b)
    rng = np.random.default_rng(sum(map(ord, fmt_a + fmt_b)))
    a = rng.standard_normal((2, 64))
    b = rng.standard_normal((64, 3))
    a[0, :32] *= 2.0 ** -30          # a block of tiny values
    a[1, 5] = 1e4                    # an outlier: the rest of its block underflows
    b[:32, 1] = 0.0                  # an all-zero block
    qa = golden.quantize(a, fmt_a, axis=1)
    qb = golden.quantize(b, fmt_b, axis=0)
    np.testing.assert_array_equal(acc.matmul(a, b), golden.gemm(qa, qb, cfg.acc))


@pytest.mark.slow
@pytest.mark.parametrize("fmt_a, fmt_b", [("mxfp4_e2m1", "mxfp4_e2m1"),
                                          ("mxint8", "mxfp6_e3m2")])
def test_matmul_over_the_simulated_uart(fmt_a, fmt_b):
    """The whole board-level SoC: 8N1 frames on the rx pin, tx decoded from its pin."""
    cfg = SoCConfig(clk_hz=4_000_000, baud=1_000_000, rows=1, cols=2, fmt_a=fmt_a,
                    fmt_b=fmt_b, max_k=32, scratch_words=16, acc_width=40, acc_frac=20)
    acc = Accelerator.simulated(cfg, link="uart")
    assert acc.info()["clk_hz"] == 4_000_000
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((1, 32)), rng.standard_normal((32, 2))
    qa = golden.quantize(a, fmt_a, axis=1)
    qb = golden.quantize(b, fmt_b, axis=0)
    np.testing.assert_array_equal(acc.matmul(a, b), golden.gemm(qa, qb, cfg.acc))
    assert acc.transport.cycles > 40 * 100    # every byte took a 10-bit frame at 4 cycles/bit


@pytest.mark.parametrize("kwargs, msg", [
    (dict(link="spi"), r"link must be one of 'bytes', 'uart', not 'spi'"),
    (dict(link="uart", backend="compiled"), r"link='uart' runs on the pysim back end only"),
])
def test_sim_transport_bad_link(kwargs, msg):
    from mxhw.soc.driver import SimTransport
    with pytest.raises(ValueError, match=msg):
        SimTransport(SoCConfig(rows=0), **kwargs)


@pytest.mark.parametrize("side, dataflow", [("fmt_b", "output_stationary"),
                                            ("fmt_a", "weight_stationary"),
                                            ("fmt_b", "weight_stationary")])
def test_mxsf_rejected(side, dataflow):
    """The systolic arrays take MXSF operands; the SoC's memories hold block modes only in
    the output-stationary unit's A scales: anything else fails at once, configuring and
    building its unit alike."""
    from mxhw.soc.gemm import GemmUnit
    msg = (f"{side}='mxsf': a format with block modes is an output-stationary unit's "
           f"fmt_a only")
    with pytest.raises(ValueError, match=msg):
        SoCConfig(dataflow=dataflow, **{side: "mxsf"})
    fmts = {"fmt_a": "mxfp4_e2m1", "fmt_b": "mxfp4_e2m1", side: "mxsf"}
    with pytest.raises(ValueError, match=msg):
        GemmUnit(2, 2, acc=golden.fixed(32, 16), dataflow=dataflow, **fmts)
