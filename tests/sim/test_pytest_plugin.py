"""``-p mxhw.sim.pytest_plugin``: --sim-backend sets the default back end for a run."""

import subprocess
import sys

INNER = '''
import os
from mxhw import sim

def test_inner(sim_backend, each_sim_backend):
    assert sim_backend == os.environ["MXHW_SIM_BACKEND"] == sim.default_backend() == "compiled"
    assert each_sim_backend in ("pysim", "compiled")
'''


def test_sim_backend_option(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "mxhw.sim.pytest_plugin",
                        "--sim-backend=compiled", "-p", "no:cacheprovider", "-p", "no:xdist",
                        str(tmp_path / "test_inner.py")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert "2 passed" in r.stdout, r.stdout + r.stderr
    # each_sim_backend's compiled parameter is marked `compiled`
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "mxhw.sim.pytest_plugin",
                        "--sim-backend=compiled", "-p", "no:cacheprovider", "-p", "no:xdist",
                        "-m", "not compiled", str(tmp_path / "test_inner.py")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert "1 passed, 1 deselected" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "mxhw.sim.pytest_plugin",
                        "--sim-backend=verilog", str(tmp_path / "test_inner.py")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0 and "invalid choice: 'verilog'" in r.stderr
