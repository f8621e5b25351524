"""``python -m mxhw.bench sim``: runs and writes the documented keys (figures only, no
assertions on speed)."""

import json

import pytest

from mxhw.bench import main


@pytest.mark.slow
@pytest.mark.compiled
def test_sim_bench_quick_json(tmp_path, capsys):
    out = tmp_path / "sim.json"
    assert main(["sim", "--quick", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    for key in ("pysim_cps_8x8", "compiled_cps_8x8", "speedup_8x8", "compiled_stream_cps",
                "soc_compiled_cps", "soc_pysim_cps", "soc_speedup", "soc_model_build_s",
                "pysim_cps_fixture_8x8", "compiled_cps_fixture_8x8", "speedup_fixture_8x8",
                "speedup_8x8_mxint8", "speedup_8x8_mxfp4", "speedup_8x8_mxint8_cpu"):
        assert data[key] > 0, key
    assert data["speedup_8x8"] == pytest.approx(
        data["compiled_cps_8x8"] / data["pysim_cps_8x8"], rel=0.01)
    assert data["speedup_8x8"] == min(data["speedup_8x8_mxint8"], data["speedup_8x8_mxfp4"])
    assert data["soc_speedup"] == pytest.approx(
        data["soc_compiled_cps"] / data["soc_pysim_cps"], rel=0.01)
    assert "SystolicArray 8x8" in data["config"]["array_design"]
    assert "compiled_cps_8x8" in capsys.readouterr().out


@pytest.mark.compiled
@pytest.mark.parametrize("backend", ["compiled", "pysim"])
def test_soc_program_checked_against_golden(backend):
    """The SoC speed program runs on either back end (compiled: the link's bytes in bulk
    through C); its result is checked against golden inside (a mismatch raises)."""
    from mxhw.bench import sim_soc
    wall, cpu, cycles, (build_wall, build_cpu) = sim_soc.time_soc_program(backend)
    assert wall > 0 and cpu > 0 and cycles > 100 and build_wall >= 0 and build_cpu >= 0


def test_soc_program_rejects_unknown_backend():
    from mxhw.bench import sim_soc
    with pytest.raises(ValueError, match="backend must be one of 'pysim', 'compiled'"):
        sim_soc.time_soc_program("stream")


@pytest.mark.slow
@pytest.mark.compiled
def test_minilm_layer_small_checked_against_golden():
    """A small layer on the MiniLM SoC: the result is checked against golden inside (a
    mismatch raises); utilisation and busy fraction are fractions of the simulated cycles,
    utilisation at most the fraction of cycles the unit was busy."""
    from mxhw.bench import sim_soc
    figures, config = sim_soc.run_minilm(tokens=16, d_in=64, d_out=16)
    assert figures["minilm_cycles"] > 0
    assert 0 < figures["minilm_mac_utilisation"] <= figures["minilm_busy_fraction"] <= 1
    assert config["minilm_model_s"] >= 0


@pytest.mark.parametrize("shape,msg", [
    ("1,2", "expected five integers T,D,F,R,C"),
    ("a,b,c,d,e", "expected five integers T,D,F,R,C"),
    ("16,128,512,0,8", "rows must be in [1, 255], not 0"),
    ("16,100,512,8,8", "d_model must be a multiple of 32"),
    ("16,128,2048,8,8", "d_ff must be in [32, 1536]")])
def test_ffn_shape_refused_in_one_line(shape, msg, capsys):
    """A bad --ffn-shape: exit 2 with one error line, before anything is built."""
    from mxhw.bench.sim import main as sim_main
    with pytest.raises(SystemExit) as e:
        sim_main(["--minilm-ffn", "--ffn-only", "--ffn-shape", shape])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


@pytest.mark.parametrize("layers", ["0", "7", "x"])
def test_encoder_layers_refused_in_one_line(layers, capsys):
    """A bad --encoder-layers: exit 2 with one error line, before anything is built."""
    from mxhw.bench.sim import main as sim_main
    with pytest.raises(SystemExit) as e:
        sim_main(["--minilm-encoder", "--ffn-only", "--encoder-layers", layers])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--encoder-layers" in err and "Traceback" not in err


@pytest.mark.parametrize("args, msg", [
    (["--encoder-layers", "3"], "--encoder-layers needs --minilm-encoder"),
    (["--ffn-only"], "--ffn-only needs --minilm-ffn or --minilm-encoder"),
])
def test_flags_without_their_benchmark_refused(args, msg, capsys):
    """A flag that only modifies a benchmark not asked for: exit 2, one line, nothing run."""
    from mxhw.bench.sim import main as sim_main
    with pytest.raises(SystemExit) as e:
        sim_main(args)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err
