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
                "soc_compiled_cps", "compiled_cps_systolic_8x8", "pysim_cps_systolic_8x8"):
        assert data[key] > 0, key
    assert data["speedup_8x8"] == pytest.approx(
        data["compiled_cps_8x8"] / data["pysim_cps_8x8"], rel=0.01)
    assert "MACGrid" in data["config"]["array_design"] or \
        "SystolicArray" in data["config"]["array_design"]
    assert "compiled_cps_8x8" in capsys.readouterr().out
