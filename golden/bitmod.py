"""BitMoD mixed data types (Chen et al., HPCA 2025), as block-format descriptors.

Values: the paper (Sec. on FP3/FP4 extensions) and abdelfattah-lab/BitMoD-HPCA-25,
``bitmod_quant/quant_utils/quant_weight.py`` (its FP3_ER_POS / FP3_ER_NEG / FP3_EA_POS /
FP3_EA_NEG lists, and the FP4 lists with the extra value 5 (ER) or 8 (EA) on the positive
or negative side); candidate order ER+, ER-, EA+, EA- (docs/FORMATS.md).

Encoding (shared with :mod:`golden.bitserial`): FP4 code = sign (bit 3) + E2M1 magnitude;
FP3 code = sign (bit 2) + 2-bit magnitude index into {0, 1, 2, 4}. The code of -0 (1000,
resp. 100) holds the candidate's extra value.

Group quantisation (``bitmod_fp4`` / ``bitmod_fp3``): groups of 128 along the quantised
axis (the input channel: quantise a weight ``W[out, in]`` with ``axis=-1``); per candidate
the group scale is ``max|w| / max|grid|`` (``max|grid|`` = 6 or 8 for FP4, 4 or 6 for FP3,
the EA candidates' extra value included) computed in float64 and rounded once, RNE, to FP16
(the released code holds FP16 scales; our single rounding is documented as our choice);
each weight rounds to the nearest grid value (ties to the even code, our choice: the
released code's argmin picks the lower grid value); per group the candidate with the
smallest exact squared error wins, ties to the first in ER+, ER-, EA+, EA-.
"""

from __future__ import annotations

from . import formats as _f
from .params import check_int
from .pergroup import FP16

__all__ = ["FP4_CANDIDATES", "FP3_CANDIDATES", "BITMOD_FP4", "BITMOD_FP3", "bitmod"]

# E2M1 magnitudes (OCP MX) and FP3 magnitudes {0, 1, 2, 4} (BitMoD paper / quant_weight.py)
_FP4_MAG = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
_FP3_MAG = (0.0, 1.0, 2.0, 4.0)
# (suffix, extra value): ER = "extra resolution", EA = "extra asymmetry"
_FP4_EXTRA = (("er_pos", 5.0), ("er_neg", -5.0), ("ea_pos", 8.0), ("ea_neg", -8.0))
_FP3_EXTRA = (("er_pos", 3.0), ("er_neg", -3.0), ("ea_pos", 6.0), ("ea_neg", -6.0))


def _table(fam, mag, suffix, extra):
    vals = list(mag) + [-m for m in mag]
    vals[len(mag)] = extra  # the -0 code
    return _f.register(_f.table_format(
        f"bitmod_{fam}_{suffix}", vals,
        doc=f"BitMoD {fam.upper()} candidate {suffix}: sign + magnitude "
            f"{mag}; the -0 code holds {extra:+g}."))


FP4_CANDIDATES = tuple(_table("fp4", _FP4_MAG, s, e) for s, e in _FP4_EXTRA)
FP3_CANDIDATES = tuple(_table("fp3", _FP3_MAG, s, e) for s, e in _FP3_EXTRA)


def bitmod(family: str = "fp4", group: int = 128) -> _f.BlockFormat:
    """BitMoD ``family`` ("fp4" or "fp3") with groups of ``group`` values."""
    cands = {"fp4": FP4_CANDIDATES, "fp3": FP3_CANDIDATES}
    if family not in cands:
        raise ValueError(f"bitmod: family must be 'fp4' or 'fp3', not {family!r}")
    check_int("bitmod: group", group, 1)
    name = f"bitmod_{family}" + ("" if group == 128 else f"_g{group}")
    if _f.registered(name):
        return _f.registered(name)
    return _f.BlockFormat(
        name=name, candidates=cands[family], scale=FP16, block=group, scale_rule="absmax",
        doc=f"BitMoD {family.upper()} (HPCA 2025): groups of {group}, FP16 absmax scale per "
            f"candidate, per-group choice among ER+, ER-, EA+, EA- by least squared error "
            f"(ties to the first).")


BITMOD_FP4 = _f.register(bitmod("fp4"))
BITMOD_FP3 = _f.register(bitmod("fp3"))
