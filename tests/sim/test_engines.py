"""The compiled back end's two engines (CXXRTL and Verilator, ``mxhw.sim.compiled.build``'s
``engine``) on real designs: the same testbench gives the same cycles and the same
outputs on both, and the outputs equal golden. Plus the engine choice and its errors."""

import os

import numpy as np
import pytest
from amaranth.hdl import Const, Module, Signal
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.golden.arith import fixed
from mxhw.sim import compiled
from mxhw.sim.compiled import CompiledSimError, verilator
from mxhw.sim.examples import StreamPipeline
from support.hyp import budget

ENGINES = ("cxxrtl", "verilator")


def _models(make):
    models = {e: compiled.build(make(), engine=e) for e in ENGINES}
    for e, m in models.items():
        assert m.engine == e
    return models


# --- the SystolicArray 8x8 (MXFP4) under one stream testbench --------------------------------

@pytest.fixture(scope="module")
def arrays():
    from mxhw.systolic import SystolicArray
    dut = SystolicArray(8, 8, "mxfp4", "mxfp4", acc=fixed(32, 16))
    models = {e: compiled.build(dut, engine=e) for e in ENGINES}
    yield dut, models
    for m in models.values():
        m.close()


@pytest.mark.compiled
@budget(8)
@given(seed=st.integers(0, 2**16), tiles=st.integers(1, 3),
       gaps=st.lists(st.integers(0, 3), min_size=96, max_size=96),
       stalls=st.lists(st.integers(0, 3), min_size=24, max_size=24))
def test_systolic_array_same_on_both_engines_and_golden(arrays, seed, tiles, gaps, stalls):
    from mxhw.systolic.driver import array_beats
    dut, models = arrays
    rng = np.random.default_rng(seed)
    qa = golden.quantize(rng.standard_normal((8, 32)), "mxfp4", axis=1)
    qb = golden.quantize(rng.standard_normal((32, 8)), "mxfp4", axis=0)
    beats = [Const.cast(dut.in_layout.const(d)).value
             for d in array_beats(qa, qb, 8, 8, 0, 0)] * tiles
    n_out = 8 * tiles
    runs = {}
    for e, m in models.items():
        m.reset()
        runs[e] = m.stream(dut.i, beats, dut.o, n_out, gaps=gaps[:len(beats)],
                           stalls=stalls[:n_out], raw=True)
    assert runs["cxxrtl"][1] == runs["verilator"][1]           # cycles
    assert runs["cxxrtl"][0] == runs["verilator"][0]           # every output row, raw bits
    _, raw = golden.gemm(qa, qb, dut.acc, return_raw=True)
    w = dut.acc.width
    for k, row in enumerate(runs["verilator"][0]):
        got = [(row >> (w * c)) & ((1 << w) - 1) for c in range(8)]
        got = [v - (1 << w) if v >> (w - 1) else v for v in got]
        assert got == [int(x) for x in raw[k % 8]]


# --- the SoC's host link (SimTransport, bulk exchange) ----------------------------------------

@pytest.fixture(scope="module")
def socs():
    from mxhw.soc.driver import Accelerator
    from mxhw.soc.top import SoCConfig
    from mxhw.soc.transport import SimTransport
    cfg = SoCConfig(scratch_words=256)
    accs, old = {}, os.environ.get("MXHW_COMPILED_ENGINE")
    try:
        for e in ENGINES:
            os.environ["MXHW_COMPILED_ENGINE"] = e
            accs[e] = Accelerator(SimTransport(cfg, backend="compiled"))
            assert accs[e].transport._model.engine == e
    finally:
        if old is None:
            os.environ.pop("MXHW_COMPILED_ENGINE", None)
        else:
            os.environ["MXHW_COMPILED_ENGINE"] = old
    yield cfg, accs
    for a in accs.values():
        a.close()


@pytest.mark.compiled
@budget(6)
@given(m=st.integers(1, 9), k=st.sampled_from([32, 64]), n=st.integers(1, 9),
       seed=st.integers(0, 2**16))
def test_soc_link_same_on_both_engines_and_golden(socs, m, k, n, seed):
    cfg, accs = socs
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    ref = golden.gemm(golden.quantize(x, cfg.fmt_a, axis=1),
                      golden.quantize(w, cfg.fmt_b, axis=0), cfg.acc)
    got, cycles = {}, {}
    for e, a in accs.items():
        c0 = a.transport.cycles
        got[e] = a.matmul(x, w)
        cycles[e] = a.transport.cycles - c0
    assert cycles["cxxrtl"] == cycles["verilator"]
    assert np.array_equal(got["cxxrtl"], got["verilator"], equal_nan=True)
    assert np.array_equal(got["verilator"], ref, equal_nan=True)


@pytest.mark.compiled
def test_soc_raw_link_bytes_same_on_both_engines(socs):
    """The bytes of a READ request's response and the cycles it took, engine by engine."""
    from mxhw.soc import protocol as P
    _, accs = socs
    seen = {}
    for e, a in accs.items():
        t = a.transport
        c0 = t.cycles
        t.write(P.request(P.Cmd.READ, 0x0, 8, seq=5))
        seen[e] = (t.read(P.RESP_HEADER + 8 + 2), t.cycles - c0)
    assert seen["cxxrtl"] == seen["verilator"]


# --- the engine choice and its errors ---------------------------------------------------------

def _harness():
    m = Module()
    a, b = Signal(8), Signal(8)
    m.d.sync += b.eq(a + 1)
    return m


def test_unknown_engine_is_refused():
    with pytest.raises(CompiledSimError, match="engine must be one of cxxrtl, verilator"):
        compiled.build(StreamPipeline(width=8, stages=1), engine="iverilog")


def test_bad_engine_variable_is_refused(monkeypatch):
    monkeypatch.setenv("MXHW_COMPILED_ENGINE", "icarus")
    with pytest.raises(CompiledSimError, match="MXHW_COMPILED_ENGINE must be one of"):
        compiled.build(StreamPipeline(width=8, stages=1))


def test_verilator_refuses_a_design_without_signature():
    with pytest.raises(CompiledSimError, match="no signature"):
        compiled.build(_harness(), engine="verilator")


def test_choice_rule(monkeypatch):
    monkeypatch.delenv("MXHW_COMPILED_ENGINE", raising=False)
    monkeypatch.delenv("MXHW_VCD", raising=False)
    monkeypatch.setattr(verilator, "available", lambda: True)
    assert verilator.choose("", True, large=True) == "verilator"
    assert verilator.choose("", True, large=False) == "cxxrtl"
    assert verilator.choose("", False, large=True) == "cxxrtl"           # harness Module
    assert verilator.choose("  cell $check $1\n", True, large=True) == "cxxrtl"   # Assert
    monkeypatch.setattr(verilator, "available", lambda: False)
    assert verilator.choose("", True, large=True) == "cxxrtl"
    monkeypatch.setenv("MXHW_COMPILED_ENGINE", "verilator")
    with pytest.raises(CompiledSimError, match="Verilator not found"):
        verilator.choose("", True, large=False)
    monkeypatch.setenv("MXHW_COMPILED_ENGINE", "cxxrtl")
    assert verilator.choose("", True, large=True) == "cxxrtl"
    monkeypatch.delenv("MXHW_COMPILED_ENGINE")
    monkeypatch.setattr(verilator, "available", lambda: True)
    big = "\n" * verilator.VERILATOR_RTLIL_LINES
    assert verilator.choose(big, True) == "verilator"
    assert verilator.choose(big[1:], True) == "cxxrtl"
    monkeypatch.setenv("MXHW_VCD", "1")                   # waveforms: CXXRTL records them
    assert verilator.choose(big, True) == "cxxrtl"


@pytest.mark.compiled
def test_verilator_model_limits_are_clear_errors():
    dut = StreamPipeline(width=16, stages=3)
    with compiled.build(dut, engine="verilator") as m:
        with pytest.raises(CompiledSimError, match="Waveforms need the CXXRTL engine"):
            m.open_vcd("/dev/null")
        with pytest.raises(CompiledSimError, match="top-level ports only"):
            m.get(Signal(16, name="stage_register"))
