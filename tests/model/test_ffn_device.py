"""A MiniLM FFN block's linear layers (real all-MiniLM-L6-v2 weights and FFN inputs,
offline) as ONE program on the simulated SoC: MXFP8 E4M3 activations re-quantised on chip
between the layers, MXFP4 weights. Expectations: golden.chain and mxhw.model's
emulation, never the device. The full block (128 tokens, 384 -> 1536 -> 384) is
``python -m mxhw.bench sim --minilm-ffn``; here a slice that pysim runs in test time."""

import numpy as np
import pytest

from mxhw.model.ffn import ffn_emulated, ffn_golden, ffn_inputs, minilm_ffn, run_ffn_program
from mxhw.soc.driver import Accelerator
from mxhw.soc.top import SoCConfig

#: 2 x 8 array, K up to 64: the slice x (4 tokens x 64) @ W1[:64, :64] -> W2[:64, :32]
CFG = SoCConfig(rows=2, cols=8, fmt_a="mxfp8_e4m3", fmt_b="mxfp4", max_k=64, a_tiles=8,
                b_tiles=16, c_tiles=16, prog_words=8, out_fmt="mxfp8_e4m3")


@pytest.fixture(scope="module")
def minilm():
    from mxhw.model import load_minilm
    return load_minilm()


@pytest.mark.slow
def test_minilm_ffn_slice_one_program_equals_golden(minilm):
    w1, w2 = minilm_ffn(0, minilm)
    assert w1.shape == (384, 1536) and w2.shape == (1536, 384)
    x = ffn_inputs(["The accelerator runs the block.", "MX formats share a scale."], 0,
                   minilm)
    assert x.shape[1] == 384 and x.shape[0] >= 4
    # a slice: 4 tokens, 64 model features, 64 FFN features, 32 outputs
    xs, w1s, w2s = x[:4, :64], w1[:64, :64], w2[:64, :32]
    want = ffn_golden(xs, w1s, w2s, CFG.fmt_a, CFG.fmt_b, CFG.acc)
    assert np.array_equal(ffn_emulated(xs, w1s, w2s, CFG.fmt_a, CFG.fmt_b, CFG.acc), want)
    with Accelerator.simulated(CFG) as acc:
        got, cycles = run_ffn_program(acc, xs, w1s, w2s)
    assert np.array_equal(got, want)
    assert len(cycles["per_instruction"]) == 3 and cycles["total"] > 0
    assert np.abs(want).max() > 0         # real data, not an all-zero result


def test_layer_index_refused(minilm):
    with pytest.raises(ValueError, match=r"layer must be an encoder layer index in \[0, 5\]"):
        minilm_ffn(6, minilm)
    with pytest.raises(ValueError, match="layer must be"):
        ffn_inputs(["a b"], -1, minilm)


def test_program_needs_the_activation_path():
    cfg = SoCConfig(rows=1, cols=2, max_k=32, prog_words=8)
    with Accelerator.simulated(cfg) as acc:
        with pytest.raises(ValueError, match="needs a device built with the on-chip "
                                             "activation path"):
            run_ffn_program(acc, np.ones((1, 32)), np.ones((32, 32)), np.ones((32, 2)))


def test_bench_config_holds_the_full_block():
    """The bench's SoC for the full block (128 tokens, 384 -> 1536 -> 384, 16 x 16) is a
    valid configuration whose memories hold both layers' operands and the result."""
    from mxhw.bench.sim_soc import ffn_config
    cfg = ffn_config()
    mt = 128 // cfg.rows
    assert cfg.max_k >= 1536 and cfg.a_tiles >= 2 * mt
    assert cfg.b_tiles >= 1536 // cfg.cols + 384 // cfg.cols
    assert cfg.c_tiles >= mt * 384 // cfg.cols and cfg.out_fmt == "mxfp8_e4m3"
