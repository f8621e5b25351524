"""The Hypothesis profiles reach every test: a test's example budget (support.hyp.budget)
and the profile default both scale with HYPOTHESIS_PROFILE."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support import hyp

_PROBE = textwrap.dedent("""
    import os
    from hypothesis import given, strategies as st
    from support.hyp import budget

    def _count(name):
        path = os.path.join(os.environ["PROBE_OUT"], name)
        with open(path, "a") as f:
            f.write("x")

    @budget(5)
    @given(st.integers())
    def test_budgeted(x):
        _count("budgeted")

    @given(st.integers())
    def test_default(x):
        _count("default")
""")


def _run(tmp_path, profile):
    out = tmp_path / profile
    out.mkdir()
    probe = tmp_path / "probe_dir"
    probe.mkdir(exist_ok=True)
    (probe / "test_probe.py").write_text(_PROBE)
    tests_dir = Path(__file__).resolve().parent
    env = dict(os.environ, HYPOTHESIS_PROFILE=profile, PROBE_OUT=str(out),
               PYTHONPATH=os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
         "-c", os.devnull, "--rootdir", str(probe), "-p", "support.hyp", str(probe)],
        env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return {name: len((out / name).read_text()) for name in ("budgeted", "default")}


@pytest.mark.parametrize("profile", ["ci", "thorough"])
def test_profile_scales_example_counts(tmp_path, profile):
    counts = _run(tmp_path, profile)
    factor = {"ci": 1, "thorough": hyp.THOROUGH_FACTOR}[profile]
    # st.integers() has far more than 5 * 20 distinct values, so Hypothesis runs the full
    # budget; it may add a few replays of failing/explicit examples (none here)
    assert counts["budgeted"] == 5 * factor
    assert counts["default"] == 50 * factor


def test_unknown_profile_is_refused(tmp_path):
    env = dict(os.environ, HYPOTHESIS_PROFILE="nonsense")
    r = subprocess.run([sys.executable, "-c", "import support.hyp"], env=env,
                       cwd=Path(__file__).resolve().parent, capture_output=True, text=True)
    assert r.returncode != 0 and "HYPOTHESIS_PROFILE must be one of" in r.stderr
