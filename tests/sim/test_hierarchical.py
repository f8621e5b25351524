"""Large designs (identical modules merged, kept as hierarchy) and fast clocking (one
evaluation per clock cycle): the same values as the flattened, two-evaluation model and as
Amaranth's simulator; the C++ patches behind them."""

import random
import warnings

import pytest
from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mxhw import sim
from mxhw.sim import compiled
from mxhw.sim.compiled import cxxpatch, rtlil
from mxhw.sim.examples import StreamPipeline
from support.sim import VECTORS


@pytest.fixture
def large(tmp_path, monkeypatch):
    """Every design built the large-design way (merged modules, hierarchy kept), into a
    fresh model cache, on CXXRTL (the engine whose large-design build this file tests)."""
    monkeypatch.setenv("MXHW_SIM_CACHE", str(tmp_path))
    monkeypatch.setenv("MXHW_COMPILED_ENGINE", "cxxrtl")
    monkeypatch.setattr(rtlil, "LARGE_RTLIL_LINES", 0)


# --- large designs: hierarchical models with identical modules merged ------------------------

class _Lane(wiring.Component):
    x: In(8)
    y: Out(8)

    def __init__(self, op):
        super().__init__()
        self.op = op
        self.acc = Signal(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.acc.eq(self.acc ^ self.x if self.op == "xor" else self.acc + self.x)
        m.d.comb += self.y.eq(self.acc)
        return m


class Lanes(wiring.Component):
    """Four identical xor lanes and one add lane, each fed its own input."""
    x: In(8).array(5)
    y: Out(8).array(5)

    def __init__(self):
        super().__init__()
        self.lanes = [_Lane("xor") for _ in range(4)] + [_Lane("add")]

    def elaborate(self, platform):
        m = Module()
        for n, lane in enumerate(self.lanes):
            m.submodules[f"lane{n}"] = lane
            # connect in a different order per lane: the merge must not depend on it
            conns = [lane.x.eq(self.x[n]), self.y[n].eq(lane.y)]
            m.d.comb += conns[::-1] if n % 2 else conns
        return m


def test_dedup_merges_identical_modules_only():
    text = rtlil.convert(Lanes())[0]
    merged, before, after = rtlil.dedup_modules(text)
    assert (before, after) == (6, 3)    # top + one xor lane + the add lane
    assert merged.count("\nmodule ") + merged.startswith("module ") == 3
    assert merged.count("  cell \\top.lane0 ") == 4


@pytest.mark.compiled
def test_hierarchical_model_agrees(large):
    """A design built the large-design way (merged modules kept as hierarchy) matches
    pysim, internal signals of merged instances included."""
    rng = random.Random(5)
    vectors = [[rng.randrange(256) for _ in range(5)] for _ in range(20)]

    def trace(backend):
        dut = Lanes()
        log = []

        async def tb(ctx):
            for v in vectors:
                for n in range(5):
                    ctx.set(dut.x[n], v[n])
                await ctx.tick()
                log.append([ctx.get(dut.y[n]) for n in range(5)] + [ctx.get(dut.lanes[2].acc)])

        sim.run(dut, tb, backend=backend)
        return log

    a, b = trace("pysim"), trace("compiled")
    assert a == b
    xor3, add4 = 0, 0
    for v in vectors:
        xor3, add4 = xor3 ^ v[3], (add4 + v[4]) % 256
    assert b[-1][3:5] == [xor3, add4]


# --- fast clocking: one evaluation per cycle, the same values as two ---------------------------

def _stream_and_steps(dut, monkeypatch, fast):
    """(model's fast flag, stream results, per-cycle stepping trace, deltas per cycle) with
    fast clocking on or off (``MXHW_SIM_FAST``)."""
    monkeypatch.setenv("MXHW_SIM_FAST", "1" if fast else "0")
    rng = random.Random(11)
    gaps = [rng.choice([0, 0, 1, 3]) for _ in VECTORS]
    stalls = [rng.choice([0, 0, 2, 5]) for _ in VECTORS]
    with compiled.build(dut) as m:
        d0, c0 = m.deltas, m.cycle
        got, cycles = m.stream(dut.i, VECTORS, dut.o, len(VECTORS), gaps=gaps, stalls=stalls)
        per_cycle = (m.deltas - d0) / (m.cycle - c0)
        trace = []
        for n, v in enumerate(VECTORS[:20]):
            m.set(dut.i.payload, v)
            m.set(dut.i.valid, n % 3 != 1)
            m.set(dut.o.ready, n % 4 != 2)
            m.step()
            trace.append((m.get(dut.i.ready), m.get(dut.o.valid), m.get(dut.o.payload)))
        return m.fast, (got, cycles), trace, per_cycle


@pytest.mark.compiled
def test_fast_clocking_agrees(monkeypatch):
    """Fast clocking (outputs sampled between the edge's evaluation and its commit) gives
    the same cycle-exact values as settle-then-edge, in one delta per cycle."""
    dut = StreamPipeline(width=16, stages=3)
    fast, a, ta, d_fast = _stream_and_steps(dut, monkeypatch, True)
    slow, b, tb, d_slow = _stream_and_steps(dut, monkeypatch, False)
    assert (fast, slow) == (True, False)
    assert a == b and ta == tb
    assert a[0] == [dut.reference(v) for v in VECTORS]
    assert (d_fast, d_slow) == (1, 2)


@pytest.mark.compiled
def test_fast_clocking_hierarchical_agrees(large, monkeypatch):
    """The same on a hierarchical (merged-module) model: child modules see the edge too."""
    rng = random.Random(3)
    vectors = [[rng.randrange(256) for _ in range(5)] for _ in range(30)]
    traces = {}
    for fast in (True, False):
        monkeypatch.setenv("MXHW_SIM_FAST", "1" if fast else "0")
        dut = Lanes()
        with compiled.build(dut) as m:
            assert m.fast == fast
            log = []
            for v in vectors:
                for n in range(5):
                    m.set(dut.x[n], v[n])
                m.step()
                log.append([m.get(dut.y[n]) for n in range(5)])
            traces[fast] = log
    assert traces[True] == traces[False]
    xor0, add4 = 0, 0
    for v in vectors:
        xor0, add4 = xor0 ^ v[0], (add4 + v[4]) % 256
    assert traces[True][-1][0] == xor0 and traces[True][-1][4] == add4


@pytest.mark.compiled
@pytest.mark.parametrize("shared", [True, False])
def test_systolic_array_hierarchical_model_is_fast(large, shared):
    """The output-stationary SystolicArray (row units or per-PE accumulators, saturating)
    as a hierarchical compiled model settles in one delta per cycle: no combinational
    path leaves a shared module into its parent's logic (one did once, a clamp behind the
    row unit's port, and halved the 8x8 array's simulated cycles/s)."""
    import numpy as np
    from mxhw.golden.arith import fixed, gemm
    from mxhw.golden.quantize import quantize
    from mxhw.systolic import SystolicArray
    from mxhw.systolic.driver import array_beats
    acc = fixed(16, 4, "saturate", "floor")
    dut = SystolicArray(3, 3, "mxfp4", "mxint8", acc=acc, shared_acc=shared)
    rng = np.random.default_rng(4)
    qa = quantize(rng.standard_normal((3, 64)) * 8, "mxfp4", axis=1)
    qb = quantize(rng.standard_normal((64, 3)), "mxint8", axis=0)
    beats = [Const.cast(dut.in_layout.const(d)).value for d in array_beats(qa, qb, 3, 3, 0, 0)]
    with compiled.build(dut) as m:
        d0, c0 = m.deltas, m.cycle
        rows, _ = m.stream(dut.i, beats * 2, dut.o, 6)
        assert m.fast and (m.deltas - d0) == (m.cycle - c0)
    _, raw = gemm(qa, qb, acc, return_raw=True)
    got = [[int(r.data[c]) for c in range(3)] for r in rows]
    assert got == [[int(x) for x in raw[k % 3]] for k in range(6)]


class _Inc(wiring.Component):
    x: In(8)
    y: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.x + 1)
        return m


class _IncChain(wiring.Component):
    """Three identical combinational modules chained against their instance order, then a
    register: kept as hierarchy, their outputs are buffered wires (several delta cycles)."""
    x: In(8)
    y: Out(8)

    def elaborate(self, platform):
        m = Module()
        c = [_Inc() for _ in range(3)]
        for n, cn in enumerate(c):
            m.submodules[f"c{n}"] = cn
        r = Signal(8)
        m.d.comb += [c[2].x.eq(self.x), c[1].x.eq(c[2].y), c[0].x.eq(c[1].y), self.y.eq(r)]
        m.d.sync += r.eq(c[0].y)
        return m


@pytest.mark.compiled
def test_fast_clocking_off_when_settling_takes_deltas(large):
    dut = _IncChain()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # Yosys: buffered combinatorial wires
        m = compiled.build(dut)
    with m:
        assert not m.fast
        for v in (5, 9, 255):
            m.set(dut.x, v)
            m.step()
            assert m.get(dut.y) == (v + 3) % 256


def test_patch_edges_only_single_rising_clock():
    one = ("struct p_top : public module {\n\tbool posedge_p_clk() const {\n"
           "\t\treturn !prev_p_clk.slice<0>().val() && p_clk.slice<0>().val();\n\t}\n};\n"
           "bool p_top::eval(performer *performer) {\n\tbool converged = true;\n")
    cc, fast = cxxpatch.patch_edges(one)
    assert fast and cc.startswith("#define MX_FAST_EDGE 1\n")
    assert "return mx_edge >= 0 ? mx_edge != 0 : (!prev_p_clk" in cc
    for other in (one.replace("posedge_p_clk", "negedge_p_clk"),
                  one + one.replace("p_clk", "p_rst"),
                  one.replace("converged = true", "converged = false"),
                  "struct p_top : public module {};\n"):
        assert cxxpatch.patch_edges(other) == (other, False)


def test_flatten_eval_marks_every_module_eval():
    cc = ("bool p_top::eval(performer *performer) {\n\tbool converged = true;\n}\n"
          "bool p_top_2e_cell::eval(performer *performer) {\n}\n"
          "\tbool eval(performer *performer = nullptr) override;\n"
          "bool p_top::commit() {\n}\n")
    out = cxxpatch.flatten_eval(cc)
    assert out.count("__attribute__((flatten)) bool p_top::eval(performer *performer) {") == 1
    assert "__attribute__((flatten)) bool p_top_2e_cell::eval(" in out
    assert out.count("__attribute__((flatten))") == 2     # not the declaration, not commit
    assert out.replace("__attribute__((flatten)) ", "") == cc
