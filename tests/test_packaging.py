"""The distribution: a wheel built from the repository installs on its own and provides
mxhw, mxhw.golden, mxhw.soc, mxhw.boards (and mxhw.bench) from the installed copy."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPO = Path(__file__).resolve().parent.parent
# every package of the source tree, nested ones included (mxhw.bench.ppa): a package
# missing from pyproject fails the import
MODULES = (["mxhw"]
           + sorted("mxhw." + ".".join(p.parent.relative_to(REPO / "mxhw").parts)
                    for p in (REPO / "mxhw").glob("*/**/__init__.py"))
           + ["mxhw.golden", "mxhw.soc", "mxhw.boards"])


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kw)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r


def _copy_sources(dst: Path):
    """Copy what the build needs (pyproject, README, the package directories it names), so
    that the build writes nothing into the working tree."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dst.mkdir()
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / f).exists():
            shutil.copy2(ROOT / f, dst / f)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for d in sorted(set(meta["tool"]["setuptools"]["package-dir"].values())):
        shutil.copytree(ROOT / d, dst / d, ignore=ignore)


@pytest.mark.slow
def test_wheel_installs_and_imports(tmp_path):
    src, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    _copy_sources(src)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--quiet", "-w", str(dist), str(src)])
    wheels = list(dist.glob("mxhw-*.whl"))
    assert len(wheels) == 1, wheels
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for f in ("mxhw/__init__.py", "mxhw/golden/__init__.py", "mxhw/golden/formats.py",
              "mxhw/golden/quantize.py", "mxhw/golden/arith.py", "mxhw/soc/__init__.py",
              "mxhw/boards/__init__.py", "mxhw/bench/__init__.py", "mxhw/bench/golden.py",
              "mxhw/bench/ppa/__init__.py", "mxhw/bench/ppa/runner.py", "mxhw/toolchain.py"):
        assert f in names, f
    assert not any(n.startswith(("golden/", "soc/", "boards/", "tests/")) for n in names)

    # a scratch venv without pip; the dev environment's pip installs the wheel into it
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
          "--no-index", "--quiet", str(wheels[0])])

    # dependencies (numpy, amaranth) come from the dev venv through PYTHONPATH; its
    # editable-install .pth file is not processed from PYTHONPATH, so mxhw must come from
    # the scratch venv
    dev_site = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = dev_site
    code = ("import importlib, json, sys\n"
            f"mods = {MODULES!r}\n"
            "files = {m: importlib.import_module(m).__file__ for m in mods}\n"
            "import numpy\n"
            "from mxhw import golden\n"
            "q = golden.quantize(numpy.array([6.0, -3.0, 0.5]), 'mxfp4')\n"
            "files['numpy'] = numpy.__file__\n"
            "files['codes'] = q.elements.tolist()\n"
            "print(json.dumps(files))\n")
    r = _run([str(py), "-c", code], cwd=tmp_path, env=env)
    files = json.loads(r.stdout)
    scratch = str(venv.resolve())
    for m in MODULES:
        assert str(Path(files[m]).resolve()).startswith(scratch), (m, files[m])
    assert str(Path(files["numpy"]).resolve()).startswith(str(Path(dev_site).resolve()))
    assert files["codes"] == [0b0111, 0b1101, 0b0001]
