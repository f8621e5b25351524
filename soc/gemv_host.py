"""Host side of the GEMV unit: BitMoD weights and MX activations onto the device, ``y = W x``
back as NumPy.

>>> h = gemv_upload_weights(acc, W, "bitmod_fp4")      # W: (rows, cols) floats, or a BitModInt
>>> y = gemv_run(acc, h, x)                             # x: (cols,) floats, or an MX vector

``acc`` is an :class:`~mxhw.soc.driver.Accelerator` whose SoC has a GEMV unit at
:data:`~mxhw.soc.gemv_map.GEMV_BASE`. Everything the device must support (formats, sizes,
the scale width) is read from its registers and checked before anything is written;
``y`` equals :func:`mxhw.golden.gemv_unit.gemv_fixed` bit for bit. The weight memories
hold one matrix: :func:`gemv_run` uploads the handle's words again when another matrix was
uploaded since.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from .. import golden
from ..golden import bitserial as _bs
from ..golden.gemv_unit import BLOCK, FAMILIES
from ..lib.params import check_int
from .driver import DeviceError, NoResponse
from .gemv import EXP_BITS, META_BITS, unit_types
from .gemv_map import (ACT_FORMATS, FAMILY_BITS, GEMV_BASE, GEMV_KIND, GEMV_REGS,
                       gemv_address, gemv_decode)
from .regmap import FORMAT_IDS, decode, lanes_log2, pack_lanes

__all__ = ["GemvWeights", "gemv_config", "gemv_upload_weights", "gemv_upload_activations",
           "gemv_run", "gemv_matmul", "gemv_write_weights"]

#: which handle's words each device's weight memories hold
_RESIDENT = weakref.WeakKeyDictionary()


def _reg(acc, name):
    return acc.read_words(GEMV_BASE + 4 * GEMV_REGS[name], 1)[0]


def gemv_config(acc) -> dict:
    """The GEMV unit the device was built with, read from its registers; ``DeviceError``
    when the SoC has none."""
    if _reg(acc, "KIND") != GEMV_KIND:
        raise DeviceError(f"this SoC has no GEMV unit (no \"GEMV\" KIND register at "
                          f"0x{GEMV_BASE:08X})")
    geo = gemv_decode("GEOMETRY", _reg(acc, "GEOMETRY"))
    fmts = gemv_decode("FORMATS", _reg(acc, "FORMATS"))
    accw = decode("ACC", _reg(acc, "ACC"))
    names = {v: k for k, v in FORMAT_IDS.items()}
    fams = tuple(f for f in FAMILIES if fmts["families"] >> FAMILY_BITS[f] & 1)
    return {"pes": geo["pes"], "lanes": geo["lanes"], "max_cols": 1 << geo["log2_max_cols"],
            "max_rows": 1 << geo["log2_max_rows"], "align_width": geo["align_width"],
            "act_fmt": names.get(fmts["act"]), "families": fams,
            "scale_bits": fmts["scale_bits"], "acc_width": accw["width"],
            "acc_frac": accw["frac_bits"]}


@dataclass(eq=False)
class GemvWeights:
    """Weights for the GEMV unit: the quantised matrix ``q`` and the words of its three
    regions (by region name: a list of ``(word offset, words)`` writes)."""
    q: _bs.BitModInt
    writes: dict
    config: dict

    @property
    def shape(self):
        return self.q.codes.shape


def _quantise(w, fmt, cfg):
    if isinstance(w, _bs.BitModInt):
        if fmt is not None and fmt != w.family:
            raise ValueError(f"fmt={fmt!r}, but the weights are quantised as {w.family!r}")
        return w
    if fmt not in FAMILIES:
        raise ValueError(f"fmt must be one of {', '.join(FAMILIES)} for float weights, not "
                         f"{fmt!r}")
    from ..golden.quantize import to_numpy
    arr = to_numpy(w)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"W must be a non-empty 2-D array (rows, cols), not of shape "
                         f"{arr.shape}")
    if arr.shape[1] % BLOCK:
        raise ValueError(f"W's columns ({arr.shape[1]}) must be a multiple of {BLOCK}")
    return _bs.quantize_int_scale(arr, fmt, group=BLOCK, scale_bits=cfg["scale_bits"])


def gemv_upload_weights(acc, w, fmt=None, row0=0, rows_to=0) -> GemvWeights:
    """Quantise (floats: ``golden.bitserial.quantize_int_scale`` in groups of 32 with the
    device's scale width) or take (a ``BitModInt`` of a built family, groups a multiple
    of 32) the weights ``w`` (rows x cols) and check them against the device. Returns the
    handle :func:`gemv_run` takes (it writes the words). ``row0`` (a multiple of the
    PEs) places them from that weight row, with rows up to ``rows_to`` written as zero
    weights (the layer API's GEMV layers, :func:`gemv_write_weights`)."""
    cfg = gemv_config(acc)
    q = _quantise(w, fmt, cfg)
    R, K = q.codes.shape
    if q.family not in cfg["families"]:
        raise ValueError(f"the device's GEMV unit was built for the weight families "
                         f"{', '.join(cfg['families'])}, not {q.family!r}")
    if q.group % BLOCK:
        raise ValueError(f"the weights' group ({q.group}) must be a multiple of {BLOCK}")
    n_types = len(_bs.FAMILIES[q.family])
    if q.types.min() < 0 or q.types.max() >= n_types or q.scale_int.min() < 0:
        raise ValueError(f"the weights' type indices must lie in [0, {n_types - 1}] and "
                         f"their scales be >= 0")
    q.weight_ints()                       # every code in its type's range (ValueError)
    if not (1 <= R <= cfg["max_rows"] - row0 and BLOCK <= K <= cfg["max_cols"]):
        raise ValueError(f"W is {R} x {K}; the device's GEMV unit takes 1 .. "
                         f"{cfg['max_rows']} rows and {BLOCK} .. {cfg['max_cols']} columns")
    if q.scale_bits > cfg["scale_bits"] or int(q.scale_int.max()) >> cfg["scale_bits"]:
        raise ValueError(f"the group scales need {q.scale_bits} bits; the device's GEMV "
                         f"unit holds {cfg['scale_bits']}")
    rexp = q.row_exp + q.lsb_exp
    lo, hi = -(1 << (EXP_BITS - 1)), (1 << (EXP_BITS - 1)) - 1
    if rexp.min() < lo or rexp.max() > hi:
        raise ValueError(f"the row exponents (row_exp + lsb_exp) span {rexp.min()} .. "
                         f"{rexp.max()}; the GEMV unit holds {lo} .. {hi} (rescale W)")
    return GemvWeights(q, _weight_writes(q, rexp, cfg, row0 // cfg["pes"], rows_to), cfg)


def _weight_writes(q, rexp, cfg, pass0=0, rows_to=0):
    """The words of the regions ``w``, ``w_meta``, ``w_exp`` (module doc of
    :mod:`mxhw.soc.gemv` and ``docs/gemv.md``): one write per row pass."""
    P, L, kmax = cfg["pes"], cfg["lanes"], cfg["max_cols"]
    types, offsets = unit_types(cfg["families"])
    cb = max(_bs.weight_type(t).code_bits for t in types)
    R, K = q.codes.shape
    npass, nb = -(-max(R, rows_to) // P), K // BLOCK
    pad = npass * P
    codes = np.zeros((pad, K), np.int64)
    codes[:R] = q.codes
    rep = q.group // BLOCK
    sel = np.zeros((pad, nb), np.int64)
    scale = np.zeros((pad, nb), np.int64)
    sel[:R] = np.repeat(q.types, rep, axis=1) + offsets[q.family]
    scale[:R] = np.repeat(q.scale_int, rep, axis=1)
    meta = sel | scale << 8
    exps = np.zeros(pad, np.int64)
    exps[:R] = rexp & ((1 << EXP_BITS) - 1)
    lw_, lm, le = lanes_log2(P * L * cb), lanes_log2(P * META_BITS), lanes_log2(P * EXP_BITS)
    writes = {"w": [], "w_meta": [], "w_exp": []}
    for p in range(npass):
        rows = slice(p * P, (p + 1) * P)
        pp = p + pass0
        # beat j: codes[row n, j * L + l] at bit (n * L + l) * cb
        beats = codes[rows].reshape(P, K // L, L).transpose(1, 0, 2).reshape(K // L, P * L)
        writes["w"].append(((pp * kmax // L) << lw_, pack_lanes(beats, cb, lw_)))
        writes["w_meta"].append(((pp * kmax // BLOCK) << lm,
                                 pack_lanes(meta[rows].T, META_BITS, lm)))
        writes["w_exp"].append((pp << le, pack_lanes(exps[None, rows], EXP_BITS, le)))
    return writes


def gemv_write_weights(acc, h, resident=True):
    """Write the handle's words to the weight memories (``resident``: :func:`gemv_run`'s
    matrix from row 0; else placed by the layer API, and no host matrix is resident)."""
    for region, chunks in h.writes.items():
        for offset, words in chunks:
            acc.write_words(gemv_address(region, offset), words)
    if resident:
        _RESIDENT[acc] = h
    else:
        _RESIDENT.pop(acc, None)


_write_weights = gemv_write_weights


def gemv_upload_activations(acc, x, fmt=None, cfg=None):
    """Quantise (floats, with the device's activation format) or take (an MX vector of it)
    ``x`` and write it to the activation memories; returns the MX vector."""
    cfg = cfg or gemv_config(acc)
    built = cfg["act_fmt"]
    if fmt is not None and golden.formats.get(fmt).name != built:
        raise ValueError(f"fmt={fmt!r}, but the device's GEMV unit was built for {built!r}")
    if isinstance(x, golden.MXArray):
        if x.fmt.name != built or len(x.shape) != 1:
            raise ValueError(f"x must be a 1-D MX vector of {built!r}, not {x.fmt.name!r} of "
                             f"shape {x.shape}")
        xq = x
    else:
        from ..golden.quantize import to_numpy
        arr = to_numpy(x)
        if arr.ndim != 1:
            raise ValueError(f"x must be 1-D, not of shape {arr.shape}")
        xq = golden.quantize(arr, built)
    K = xq.shape[0]
    if K % BLOCK or not BLOCK <= K <= cfg["max_cols"]:
        raise ValueError(f"x has {K} values; the device's GEMV unit takes a multiple of "
                         f"{BLOCK} up to {cfg['max_cols']}")
    codes = np.asarray(xq.elements, np.int64).reshape(-1, BLOCK)
    eb = xq.fmt.element.bits
    acc.write_words(gemv_address("x"), pack_lanes(codes, eb, lanes_log2(BLOCK * eb)))
    acc.write_words(gemv_address("x_scale"), [int(s) for s in xq.scales])
    return xq


def gemv_run(acc, h: GemvWeights, x, fmt=None, poll_limit=10_000, raw=False):
    """``y = W x`` on the device (``h`` from :func:`gemv_upload_weights`, ``x`` as
    :func:`gemv_upload_activations` takes it): float64 ``(rows,)`` (NaN where golden gives
    NaN); with ``raw`` also the result registers (Python ints)."""
    if not isinstance(h, GemvWeights):
        raise TypeError(f"h must be the handle gemv_upload_weights returned, not {h!r}")
    check_int("poll_limit", poll_limit, 1)
    cfg = h.config
    R, K = h.shape
    xq = gemv_upload_activations(acc, x, fmt, cfg)
    if xq.shape[0] != K:
        raise ValueError(f"x has {xq.shape[0]} values, W has {K} columns")
    if _RESIDENT.get(acc) is not h:
        _write_weights(acc, h)
    acc.write_words(gemv_address("regs", GEMV_REGS["COLS"]), [K])
    acc.write_words(gemv_address("regs", GEMV_REGS["ROWS"]), [R])
    acc.write_words(gemv_address("regs", GEMV_REGS["START"]), [1])
    acc._wait(-(-R // cfg["pes"]) * K // cfg["lanes"] * 3)   # a lower bound of its time
    for _ in range(poll_limit):
        st = decode("STATUS", acc.read_words(gemv_address("regs", GEMV_REGS["STATUS"]), 1)[0])
        if st["done"]:
            break
    else:
        raise NoResponse(f"the GEMV unit did not finish after {poll_limit} polls")
    W, F = cfg["acc_width"], cfg["acc_frac"]
    lw = lanes_log2(W)
    words = acc.read_words(gemv_address("y"), R << lw)
    spec = acc.read_words(gemv_address("y_special"), -(-R // cfg["pes"]))
    regs, y = [], np.zeros(R)
    for r in range(R):
        v = sum(words[(r << lw) + i] << (32 * i) for i in range(1 << lw)) & ((1 << W) - 1)
        v -= (v >> (W - 1)) << W
        regs.append(v)
        nan = spec[r // cfg["pes"]] >> (r % cfg["pes"]) & 1
        y[r] = np.nan if nan else float(np.ldexp(float(v), -F))
    return (y, regs) if raw else y


def gemv_matmul(acc, h: GemvWeights, xs, fmt=None, poll_limit=10_000):
    """``Y = X W^T`` for activations ``xs`` (tokens x cols: floats, each row quantised
    along cols, or a sequence of MX vectors): one :func:`gemv_run` per token on the
    resident weights. Returns float64 (tokens, rows)."""
    if isinstance(xs, golden.MXArray):
        raise TypeError("xs must be a 2-D float array or a sequence of 1-D MX vectors, not "
                        "one MXArray")
    if not isinstance(xs, (list, tuple)):
        from ..golden.quantize import to_numpy
        xs = to_numpy(xs)
        if xs.ndim != 2:
            raise ValueError(f"xs must be 2-D (tokens, cols), not of shape {xs.shape}")
    return np.stack([gemv_run(acc, h, x, fmt, poll_limit) for x in xs]) if len(xs) else \
        np.zeros((0, h.shape[0]))


assert set(ACT_FORMATS) <= set(FORMAT_IDS)
