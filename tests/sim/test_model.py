"""The compiled back end's Model API (set/get by port, port arrays, interfaces, batch runs,
reset), its cache and waveforms, and the errors of both back ends' front end
(``mxhw.sim.run``)."""

import pytest
from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from mxhw import sim
from mxhw.sim import compiled
from mxhw.sim.examples import MACGrid, StreamPipeline, WideAdder, WideWord
from support.sim import VECTORS, grid_inputs, grid_reference, to_signed


# --- the Model API ------------------------------------------------------------------------------

@pytest.mark.compiled
def test_model_api_wide_and_views():
    dut = WideAdder(width=130)
    with compiled.build(dut) as m:
        m.set(dut.a, (1 << 129) | 3)
        m.set("b", 1 << 100)
        assert m.get(dut.k) == to_signed(-((1 << 129) | 3), 130)
        m.set(dut.x, {"lo": 5, "hi": 6, "tag": 7})
        m.set(dut.x.tag, 2)                        # a view field is a slice of the port
        m.step()
        assert m.get("s") == (1 << 129) + (1 << 100) + 3
        y = m.get(dut.y)
        assert (y.lo, y.hi, y.tag) == (5, 6, 3)
        assert m.get(dut.count) == 1
        m.set(dut.a[128:130], 0)                   # part of a wide input
        assert m.get(dut.a) == 3
        m.set(dut.x, {"hi": 9, "tag": True})       # missing fields are zero, as Layout.const
        assert m.get(dut.x.as_value()) == (9 << 64) | (1 << 96)
        m.set(dut.x, WideWord.const({"lo": 1, "hi": 2, "tag": 3}))   # a data.Const
        assert m.get(dut.x.as_value()) == 1 | (2 << 64) | (3 << 96)
        with pytest.raises((TypeError, ValueError)):
            m.set(dut.x, {"nope": 1})
    with pytest.raises(compiled.CompiledSimError, match="has been closed"):
        m.get(dut.a)
    with pytest.raises(compiled.CompiledSimError, match="has been closed"):
        m.step()


@pytest.mark.compiled
def test_model_api_port_arrays_and_interfaces():
    n = 4
    dut = MACGrid(n=n)
    inputs = grid_inputs(n, 8, 25, seed=4)
    with compiled.build(dut) as m:
        for a, b, en in inputs:
            m.set(dut.a, a)                        # a whole port array at once
            m.set(dut.b, b)
            m.set(dut.en, en)
            m.step()
        assert m.get(dut.acc) == grid_reference(n, 8, dut.acc_width, inputs)
        with pytest.raises(ValueError, match="Port array has 4 elements, value has 3"):
            m.set(dut.a, [1, 2, 3])
    pipe = StreamPipeline(width=16, stages=1)
    with compiled.build(pipe) as m:
        m.set(pipe.i, {"payload": 10, "valid": 1})   # an interface, as a dict of members
        m.set(pipe.o.ready, 1)
        assert m.get(pipe.i)["ready"] == 1
        m.step()
        assert m.get(pipe.o) == {"payload": 31, "valid": 1, "ready": 1}


@pytest.mark.compiled
def test_model_batch_run_matches_stepping():
    dut = StreamPipeline(width=16, stages=3)
    with compiled.build(dut) as m:
        n = len(VECTORS) + 3
        valid, payload, ready = m.run(
            [(dut.i.payload, VECTORS + [0] * 3), (dut.i.valid, [1] * len(VECTORS) + [0] * 3),
             ("o__ready", [1] * n)],
            [dut.o.valid, dut.o.payload, dut.i.ready])
        assert ready == [1] * n
        assert valid == [0] * 3 + [1] * len(VECTORS)
        assert payload[3:] == [dut.reference(v) for v in VECTORS]
        with pytest.raises(ValueError, match="has 2 values for 3 cycles"):
            m.run({"i__valid": [1, 1, 1], "i__payload": [1, 2]})


@pytest.mark.compiled
def test_model_reset():
    dut = WideAdder(width=70)
    with compiled.build(dut) as m:
        m.set(dut.a, 1 << 69)
        m.step(5)
        assert m.get(dut.count) == 5
        assert m.get(dut.s) == 1 << 69
        m.reset()
        assert m.get(dut.count) == 0
        assert m.get(dut.s) == 0
        m.step(3)
        assert m.get(dut.count) == 3
        assert m.cycle == 9


# --- the cache --------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.compiled
def test_cache_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MXHW_SIM_CACHE", str(tmp_path))
    before = compiled.build_count()
    m1 = compiled.build(StreamPipeline(width=12, stages=2))
    assert (m1.compiled, compiled.build_count()) == (True, before + 1)
    m2 = compiled.build(StreamPipeline(width=12, stages=2))    # a new, identical instance
    assert (m2.compiled, compiled.build_count()) == (False, before + 1)
    assert m2.key == m1.key and m2.path == m1.path
    assert m1.path.parent == tmp_path
    m3 = compiled.build(StreamPipeline(width=12, stages=3))    # a different design
    assert (m3.compiled, compiled.build_count()) == (True, before + 2)
    assert m3.key != m1.key
    # both models live side by side, each with its own state
    for m in (m1, m2):
        m.set("o__ready", 1)
        m.set("i__valid", 1)
    m1.set("i__payload", 1)
    m2.set("i__payload", 2)
    m1.step(2)
    m2.step(2)
    assert (m1.get("o__payload"), m2.get("o__payload")) == (13, 22)


# --- waveforms --------------------------------------------------------------------------------

@pytest.mark.compiled
def test_vcd_on_request(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MXHW_VCD", "1")
    dut = StreamPipeline(width=16, stages=3)

    async def producer(ctx):
        await sim.stream_send(ctx, dut.i, VECTORS[:5])

    async def consumer(ctx):
        await sim.stream_recv(ctx, dut.o, 5)

    sim.run(dut, producer, consumer, vcd="pipe compiled", backend="compiled")
    text = (tmp_path / "out" / "vcd" / "pipe_compiled.vcd").read_text()
    assert "$timescale" in text and "$enddefinitions" in text
    for name in ("i__payload", "o__valid", "clk"):
        assert f" {name} $end" in text
    assert "#5000\n" in text and "#15000\n" in text     # 10 ns clock, sampled at both edges


# --- errors -----------------------------------------------------------------------------------

class TwoDomains(wiring.Component):
    o: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.domains.fast = ClockDomain()
        r = Signal()
        m.d.fast += r.eq(~r)
        m.d.sync += self.o.eq(r)
        return m


class LocalSync(wiring.Component):
    o: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain()
        m.d.sync += self.o.eq(~self.o)
        return m


def test_reject_two_clock_domains():
    with pytest.raises(compiled.CompiledSimError,
                       match=r"one clock domain, 'sync', driven from outside the design; this "
                             r"design has clock domains \['fast', 'sync'\]"):
        compiled.build(TwoDomains())
    with pytest.raises(compiled.CompiledSimError, match=r"\['sync'\] \(sync defined inside"):
        compiled.build(LocalSync())


def test_env_default_falls_back_to_pysim(monkeypatch):
    monkeypatch.setenv("MXHW_SIM_BACKEND", "compiled")
    dut = TwoDomains()

    async def tb(ctx):
        await ctx.tick().repeat(2)

    with pytest.warns(sim.SimBackendFallback, match="falling back to pysim"):
        sim.run(dut, tb)
    with pytest.raises(compiled.CompiledSimError):
        sim.run(TwoDomains(), tb, backend="compiled")


def test_bad_backend_names(monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of pysim, compiled, not 'verilog'"):
        sim.run(StreamPipeline(), backend="verilog")
    monkeypatch.setenv("MXHW_SIM_BACKEND", "fast")
    with pytest.raises(ValueError, match="MXHW_SIM_BACKEND must be one of pysim, compiled"):
        sim.default_backend()


@pytest.mark.compiled
def test_internal_signals_and_outputs_rejected():
    dut = StreamPipeline(width=16, stages=1)
    stray = Signal(4)

    async def read_stray(ctx):
        ctx.get(stray)

    with pytest.raises(compiled.CompiledSimError, match="is not a signal of this design"):
        sim.run(dut, read_stray, backend="compiled")

    dut = StreamPipeline(width=16, stages=1)

    async def set_output(ctx):
        ctx.set(dut.o.valid, 1)

    with pytest.raises(compiled.CompiledSimError, match="'o__valid' is an output"):
        sim.run(dut, set_output, backend="compiled")

    async def delay(ctx):
        await ctx.delay(1e-9)

    with pytest.raises(compiled.CompiledSimError, match=r"ctx.delay\(\) is not supported"):
        sim.run(StreamPipeline(width=16, stages=1), delay, backend="compiled")


@pytest.mark.compiled
def test_bad_optimisation_flag(monkeypatch):
    monkeypatch.setenv("MXHW_SIM_OPT", "-O9")
    with pytest.raises(compiled.CompiledSimError, match="MXHW_SIM_OPT must be one of"):
        compiled.build(StreamPipeline(width=16, stages=1))


