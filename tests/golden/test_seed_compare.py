"""The compare CLI and the registry of the new formats."""
import subprocess
import sys

import numpy as np
import pytest

from mxhw import golden
from mxhw.golden import compare, formats as F

NEW = ["mxsf", "mxsf_tile", "bitmod_fp4", "bitmod_fp3", "int4_g128", "int3_g128",
       "int4_g128_asym", "flint4", "flint4_u", "pot4", "fp16", "mxsf_w", "mxsf_s",
       "flint8", "flint8_u", "fp8_e4m3_pt", "fp8_e5m2_pt",
       *[f"mxint{n}" for n in range(2, 9)], *[f"mxint{n}_mase" for n in range(2, 9)]]


def test_names_registered():
    assert set(NEW) <= set(F.names())


def _run(*args):
    return subprocess.run([sys.executable, "-m", "mxhw.golden.compare", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_prints_every_format(tmp_path):
    x = np.random.default_rng(0).standard_normal((4, 256))
    p = tmp_path / "t.npy"
    np.save(p, x)
    fmts = ["mxfp4", "mxsf", "bitmod_fp4", "mxint4", "int4_g128_asym", "ant4"]
    r = _run("--formats", ",".join(fmts), "--tensor", str(p))
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("| ")][1:]
    assert [ln.split("|")[2].strip() for ln in lines] == fmts
    # the printed SQNR equals an independent computation
    d = golden.quantize(x, "mxfp4").dequantize()
    sqnr = 10 * np.log10((x ** 2).sum() / ((x - d) ** 2).sum())
    assert lines[0].split("|")[4].strip() == f"{sqnr:.2f}"
    assert lines[0].split("|")[3].strip() == "4.2500"


def test_cli_bad_name():
    r = _run("--formats", "mxfp4,nosuch")
    assert r.returncode == 2
    assert "--formats: unknown format 'nosuch'; use a block format (" in r.stderr


def test_evaluate_element_name_error():
    with pytest.raises(ValueError, match=r"^'fp4_e2m1' is an element format; compare takes "
                                         r"block formats$"):
        compare.evaluate(np.ones(4), "fp4_e2m1")


def test_synthetic_is_seeded():
    a, b = compare.synthetic(3, (4, 8)), compare.synthetic(3, (4, 8))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert sorted(a) == ["gaussian", "laplace", "student_t_outliers"]


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "p.png"
    compare.main(["--formats", "mxfp4,mxint4", "--plot", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_per_tensor_formats(tmp_path):
    x = np.random.default_rng(1).standard_t(3, (8, 64))
    p = tmp_path / "t.npy"
    np.save(p, x)
    fmts = ["fp8_e4m3_pt", "fp8_e5m2_pt", "ant8", "ant4"]
    r = _run("--formats", ",".join(fmts), "--tensor", str(p))
    assert r.returncode == 0, r.stderr
    lines = [ln.split("|") for ln in r.stdout.splitlines() if ln.startswith("| ")][1:]
    assert [ln[2].strip() for ln in lines] == fmts
    n = x.size
    # bits per value: the one FP32 (per-tensor FP8) or FP16 + type bits (ANT) scale
    # amortised over the tensor
    want_bpv = [8 + 32 / n, 8 + 32 / n, 8 + (16 + 1) / n, 4 + (16 + 2) / n]
    assert [ln[3].strip() for ln in lines] == [f"{b:.4f}" for b in want_bpv]
    d = golden.quantize(x, "fp8_e5m2_pt").dequantize()
    sqnr = 10 * np.log10((x ** 2).sum() / ((x - d) ** 2).sum())
    assert lines[1][4].strip() == f"{sqnr:.2f}"
    assert lines[1][5].strip() == f"{np.abs(x - d).max():.4g}"


def test_wide_matches_long_form():
    tensors = compare.synthetic(0, (4, 64))
    names = ["mxfp4", "fp8_e4m3_pt", "ant8"]
    _, rows = compare.table(tensors, names)
    lines = compare.wide(rows).splitlines()
    assert lines[0] == ("| format | bits/value | gaussian SQNR (dB) | laplace SQNR (dB) | "
                        "student_t_outliers SQNR (dB) |")
    for name, ln in zip(names, lines[2:]):
        cells = [c.strip() for c in ln.strip("|").split("|")]
        mine = [r for r in rows if r[1] == name]
        assert cells == [name, f"{mine[0][2]:.4f}", *[f"{r[3]:.2f}" for r in mine]]
    r = _run("--formats", ",".join(names), "--wide", "--seed", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == lines[0]
