"""The PPA suite's configurations: which blocks it measures, with which parameters.

Every component constructor the suite calls is in the "constructors" section below, one
function per block kind: when a component's parameters change, that is the one place to
follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ... import golden

__all__ = ["Config", "CONFIGS", "QUICK", "SOC", "MUL_PAIRS", "MX_FORMATS", "ARRAY_FORMATS",
           "ARRAY_SIZES", "ARRAY_ACC", "DOT_PIPELINE", "DOT_DSP", "DOT_TARGETS",
           "REQUANT_PIPELINE", "BITSERIAL_ARRAYS", "LARGE_ARRAY", "SCALABLE_SIZES", "select", "is_large", "maker",
           "element_name"]


@dataclass(frozen=True)
class Config:
    """One block configuration.

    Attributes
    ----------
    name : str
        ``<block>_<config>``: the prefix of every figure's key.
    block : str
        ``mul``, ``dot``, ``align``, ``modeswitch``, ``requant``, ``bitserial``, ``array``,
        ``tilearray``, ``tileunit`` (the SoC's tile unit, bus adapter included).
    make : callable
        Returns a fresh component (a ``wiring.Component``) each call.
    macs_per_cycle : float
        Multiply-accumulates per clock at full throughput (0: not a MAC block).
    params : dict
        What the report shows about the configuration (format, size...).
    targets : tuple
        Synthesis targets the suite measures it for (``runner.SCRIPTS`` keys): ``ecp5`` and
        ``xc7``, or ``ecp5`` alone for a block that instantiates ECP5 primitives.
    """

    name: str
    block: str
    make: object = field(repr=False, compare=False)
    macs_per_cycle: float = 0
    params: dict = field(default_factory=dict, compare=False)
    targets: tuple = ("ecp5", "xc7")


#: The default ULX3S SoC's name in the suite (measured by a board build, not a harness).
SOC = "soc_ulx3s"
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
#: Block size of the dot-product, aligner, mode-switch and re-quantiser configurations.
K = 32
#: Pipeline depth of the dot-product configurations, per format: ``MXDotProduct``'s
#: default, a register after each of its levels (``mxhw.pe.dot.dot_levels``: ``log2(K) +
#: 3``, one more for the FP8 formats, whose products shift in two levels).
DOT_PIPELINE = {f: K.bit_length() + 2 + f.startswith("mxfp8") for f in MX_FORMATS}
#: Dot-product configurations whose products are ECP5 DSP blocks with their own operand
#: and product registers (``MXDotProduct(dsp="ecp5")``, :mod:`mxhw.lib.dsp`): measured for
#: ECP5 only (their netlist instantiates ``MULT18X18D``).
DOT_DSP = {"mxint8": "ecp5"}
#: Targets of the dot-product configurations (issue #33, k = 32, ECP5-85F -6): the
#: largest LUT4-equivalents (``dot_<fmt>_luts``; MXINT8 with its DSP blocks, the FP
#: formats without) and the lowest Fmax (``dot_<fmt>_fmax_mhz``, median of 3 placer seeds)
#: at the default pipeline, and the published unit each is set against (its figure
#: synthesised with the same flow). MXFP4 also keeps the Fmax the README reported before
#: the free-running pass (issue #28: no README figure worse), ``fmax_mhz`` 176.9. Measured
#: (2026-12-08, medians of seeds 1-3, docs/components.md): see the README's "MX dot
#: products" table.
DOT_TARGETS = {
    "dot_mxfp4": {"luts": 1387, "fmax_mhz": 176.9,
                  "peer": "MX-for-FPGA dot_fp, 0.75 x its 1849 LUT4-eq."},
    "dot_mxfp6_e3m2": {"luts": 3678, "fmax_mhz": 150,
                       "peer": "MX-for-FPGA dot_fp with its 32 MULT18X18D"},
    "dot_mxfp8_e4m3": {"luts": 6890, "fmax_mhz": 150,
                       "peer": "MX-for-FPGA dot_fp with its 32 MULT18X18D"},
    "dot_mxint8": {"luts": 2428, "fmax_mhz": 150,
                   "peer": "MASE mxint_dot_product with its 32 MULT18X18D"},
}
#: Pipeline depth of the re-quantiser configurations (``Requantizer(pipeline=...)``): the
#: deepest (its critical path, max|x|'s highest set bit to the block terms, is the stage
#: that depth 5 joins to the OR of the magnitudes).
REQUANT_PIPELINE = 7
#: Fixed-point input of the re-quantiser configurations (width, fractional bits).
REQUANT_INPUT = (24, 16)
#: Arrays of bit-serial PEs (``pe="bitserial"``): format (A and B) and size; a K step
#: takes the weight format's serial bits (MXINT8 8, MXFP4 5 cycles).
BITSERIAL_ARRAYS = [("mxint8", 4), ("mxfp4", 4)]
#: Sizes of the precision-scalable arrays (:class:`~mxhw.systolic.ScalableArray`, its
#: default modes): one configuration per size and mode, the same circuit (one synthesis,
#: cached by its RTL), with the mode's MACs per cycle. Measured on request only
#: (``--large`` or ``--only``, :func:`is_large`).
SCALABLE_SIZES = [2, 4, 8]
#: ``--quick``: one of each kind of flow (a multiplier, a streamed block, an array, the SoC).
QUICK = ["mul_fp4_e2m1_x_fp4_e2m1", "align_mxfp4", "array_mxfp4_2x2", SOC]
#: Arrays this large are measured only on request (``--large`` or ``--only``): their
#: synthesis alone takes tens of minutes, and with today's PE they exceed the LFE5U-85F.
LARGE_ARRAY = 16


def element_name(block_fmt):
    """The element format name of block format ``block_fmt`` (golden's name or alias)."""
    return golden.formats.get(block_fmt).element.name


# ---- constructors: every component the suite builds, with its parameters -------------

def _make_mul(a, b):
    from ...pe import ElementMultiplier
    return ElementMultiplier(a, b)


def _make_dot(fmt):
    from ...pe import MXDotProduct
    return MXDotProduct(fmt, fmt, dsp=DOT_DSP.get(fmt))  # k = the block size (32)


def _make_align(fmt):
    from ...dequant import Aligner
    return Aligner(fmt)


def _make_modeswitch():
    from ...dequant import MXSFDecoder
    return MXSFDecoder(k=K)


def _make_requant(fmt):
    from ...dequant import Requantizer
    return Requantizer(fmt, pipeline=REQUANT_PIPELINE)


def _make_requant_default(fmt):
    from ...dequant import Requantizer
    return Requantizer(fmt)


def _make_bitserial(lanes):
    from ...pe import BitSerialPE
    return BitSerialPE(act_width=8, max_wbits=8, lanes=lanes)


def _make_array(fmt, n, pe=None):
    from ...systolic import SystolicArray
    kw = {} if pe is None else {"pe": pe}
    return SystolicArray(n, n, fmt, fmt, acc=golden.arith.fixed(*ARRAY_ACC), **kw)


def _make_tilearray(n):
    from ...systolic.tilearray import TileArray
    # a 2 x 2 grid of 8 x 4 tiles per operand; B read transposed (the dY W^T product)
    return TileArray(n, n, "mxsf_tile", "mxsf_tile", golden.arith.fixed(*ARRAY_ACC),
                     transpose_b=True, tiles_a=(2, 2), tiles_b=(2, 2))


def _make_tileunit(n):
    from ...soc.tileunit import TileGemmUnit
    # the SoC's tile unit: two slots of 16 x 16 (2 x 4 tiles of 8 x 4), both memory copies
    return TileGemmUnit(n, n, "mxsf_tile", golden.arith.fixed(*ARRAY_ACC), max_k=16, slots=2)


def _make_scalable(n):
    from ...systolic import ScalableArray
    return ScalableArray(n, n, acc=golden.arith.fixed(*ARRAY_ACC))


def _serial_bits(fmt):
    """Cycles per K step of a bit-serial array of block format ``fmt``."""
    from ...systolic.bitserial import serial_bits
    return serial_bits(golden.formats.get(fmt).element)


# ---- the registry ----------------------------------------------------------------------

def maker(fn, *args):
    """A ``Config.make``: ``fn(*args)`` on each call, named after ``fn`` and ``args``."""
    def make():
        return fn(*args)
    make.__name__ = f"{fn.__name__}{args!r}"
    return make


def _registry():
    cfgs = []
    for a, b in MUL_PAIRS:
        cfgs.append(Config(f"mul_{a}_x_{b}", "mul", maker(_make_mul, a, b), 1,
                           {"fmt_a": a, "fmt_b": b, "pipeline": 0}))
    for f in MX_FORMATS:
        cfgs.append(Config(f"dot_{f}", "dot", maker(_make_dot, f), K,
                           {"format": f, "k": K, "pipeline": DOT_PIPELINE[f],
                            **({"dsp": DOT_DSP[f]} if f in DOT_DSP else {})},
                           targets=("ecp5",) if f in DOT_DSP else ("ecp5", "xc7")))
    for f in MX_FORMATS:
        if f.startswith("mxfp"):
            cfgs.append(Config(f"align_{f}", "align", maker(_make_align, f), 0,
                               {"format": f, "k": K, "pipeline": 2}))
    cfgs.append(Config("modeswitch_mxsf", "modeswitch", maker(_make_modeswitch), 0,
                       {"format": "mxsf", "k": K}))
    for f in MX_FORMATS:
        cfgs.append(Config(f"requant_{f}", "requant", maker(_make_requant, f), 0,
                           {"format": f, "k": K, "in_width": REQUANT_INPUT[0],
                            "in_frac": REQUANT_INPUT[1], "pipeline": REQUANT_PIPELINE}))
    for lanes in (1, 8):
        # 8-bit weights: one beat of `lanes` MACs per 8 cycles
        cfgs.append(Config(f"bitserial_a8w8_l{lanes}", "bitserial",
                           maker(_make_bitserial, lanes), lanes / 8,
                           {"act_width": 8, "max_wbits": 8, "lanes": lanes,
                            "weight_bits": 8}))
    for f in ARRAY_FORMATS:
        for n in ARRAY_SIZES:
            cfgs.append(Config(f"array_{f}_{n}x{n}", "array", maker(_make_array, f, n),
                               n * n, {"format": f, "rows": n, "cols": n,
                                       "acc": f"fixed{ARRAY_ACC}"}))
    for f, n in BITSERIAL_ARRAYS:
        p = _serial_bits(f)
        cfgs.append(Config(f"array_bitserial_{f}_{n}x{n}", "array",
                           maker(_make_array, f, n, "bitserial"), n * n / p,
                           {"format": f, "rows": n, "cols": n, "pe": "bitserial",
                            "weight_bits": p, "acc": f"fixed{ARRAY_ACC}"}))
    # issue #35: MXSF arrays on 1-D blocks of 32 and on 8 x 4 tiles (K blocks of 4), and
    # the tile array with its two operand stores (the second orientation's reads)
    for f in ("mxsf", "mxsf_tile"):
        cfgs.append(Config(f"array_{f}_2x2", "array", maker(_make_array, f, 2), 4,
                           {"format": f, "rows": 2, "cols": 2, "acc": f"fixed{ARRAY_ACC}"}))
    cfgs.append(Config("tilearray_mxsf_tile_2x2", "tilearray", maker(_make_tilearray, 2), 4,
                       {"format": "mxsf_tile", "rows": 2, "cols": 2, "tiles": "2x2 per operand",
                        "acc": f"fixed{ARRAY_ACC}"}))
    cfgs.append(Config("tileunit_mxsf_tile_2x2", "tileunit", maker(_make_tileunit, 2), 4,
                       {"format": "mxsf_tile", "rows": 2, "cols": 2,
                        "tiles": "2 slots of 2x4 tiles, two copies", "run_time_transpose": True,
                        "acc": f"fixed{ARRAY_ACC}"}))
    from ...systolic.scalable import DEFAULT_MODES
    from ...systolic.scalable_pe import scale_modes
    for n in SCALABLE_SIZES:
        for f, md in zip(DEFAULT_MODES, scale_modes(DEFAULT_MODES)):
            cfgs.append(Config(f"scalable_{n}x{n}_{f}", "scalable", maker(_make_scalable, n),
                               n * n * md.lanes,
                               {"format": f, "rows": n, "cols": n, "lanes": md.lanes,
                                "modes": ",".join(DEFAULT_MODES),
                                "acc": f"fixed{ARRAY_ACC}"}))
    # issue #33, target 4: the re-quantiser's MXSF side (both modes and the squared-error
    # mode select) at its default pipeline (None: the deepest, 8)
    cfgs.append(Config("requant_mxsf", "requant", maker(_make_requant_default, "mxsf"), 0,
                       {"format": "mxsf", "k": K, "in_width": REQUANT_INPUT[0],
                        "in_frac": REQUANT_INPUT[1], "pipeline": 8}))
    return {c.name: c for c in cfgs}


#: Configuration name -> :class:`Config`, in report order.
CONFIGS = _registry()


def is_large(name):
    """An array of :data:`LARGE_ARRAY` rows or more, or a precision-scalable array (its
    4x4 alone took over an hour of synthesis and place and route on a loaded 2-core
    machine): left out of the default run."""
    cfg = CONFIGS.get(name)
    return cfg is not None and (cfg.block == "scalable" or (
        cfg.block == "array" and cfg.params["rows"] >= LARGE_ARRAY))


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
