"""The proof set: every :class:`~mxhw.formal.flow.Proof`, by block.

``thorough=True`` marks proofs too slow for CI (``--thorough`` runs them; see
docs/formal.md for the times measured)."""

from __future__ import annotations

from itertools import combinations_with_replacement

from .flow import Proof
from .harness import AlignerEquiv, DotEquiv, MultiplierEquiv, StreamContract

__all__ = ["OCP_ELEMENTS", "all_proofs", "BLOCKS"]

#: The OCP MX element formats.
OCP_ELEMENTS = ("fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1", "int8")

#: Multiplier pairs measured slower than a minute with the default solver: thorough only.
SLOW_PAIRS = {("fp8_e4m3", "fp8_e4m3"), ("fp8_e4m3", "fp8_e5m2"), ("fp8_e5m2", "fp8_e5m2"),
              ("fp8_e4m3", "fp6_e3m2"), ("fp8_e4m3", "fp6_e2m3"), ("fp8_e5m2", "fp6_e3m2"),
              ("fp8_e5m2", "fp6_e2m3"),
              ("int8", "int8"), ("fp8_e4m3", "int8"), ("fp8_e5m2", "int8")}


def _harness(cls, *args, **kwargs):
    def build():
        h = cls(*args, **kwargs)
        return h, h.ports()
    return build


def multiplier_proofs():
    out = []
    for fa, fb in combinations_with_replacement(OCP_ELEMENTS, 2):
        out.append(Proof(f"mul_{fa}_x_{fb}", "ElementMultiplier",
                         f"{fa} x {fb}: p == int_a * int_b, nonfinite, all code pairs",
                         _harness(MultiplierEquiv, fa, fb, 0), depth=1,
                         thorough=(fa, fb) in SLOW_PAIRS))
    # the pipelined variants (latency 1 and 2) on a small pair: the registers delay by
    # exactly `pipeline` cycles
    for pl in (1, 2):
        out.append(Proof(f"mul_fp4_e2m1_x_fp6_e3m2_p{pl}", "ElementMultiplier",
                         f"fp4_e2m1 x fp6_e3m2, pipeline={pl}: product {pl} cycles later",
                         _harness(MultiplierEquiv, "fp4_e2m1", "fp6_e3m2", pl),
                         depth=pl + 2))
    return out


def _fifo(depth):
    def make():
        from ..mem import StreamFIFO
        return StreamFIFO(4, depth)
    return make


def _skid():
    from ..mem import SkidBuffer
    return SkidBuffer(4)


def _stream(make, capacity):
    def build():
        h = StreamContract(make(), 4, capacity)
        return h, h.ports()
    return build


STREAM_PROP = ("stream contract: o holds valid+payload while not ready; in order, none "
               "lost/duplicated; capacity")


def stream_proofs():
    return [
        Proof("skid_contract", "SkidBuffer", STREAM_PROP + " 2", _stream(_skid, 2),
              depth=20),
        Proof("fifo4_contract", "StreamFIFO", STREAM_PROP + " 4 (depth=4)",
              _stream(_fifo(4), 4), depth=12),
        Proof("fifo1_contract", "StreamFIFO", STREAM_PROP + " 1 (depth=1)",
              _stream(_fifo(1), 1), depth=20),
    ]


DOT_S = "S == sum_j rom(a_j) * rom(b_j) (0 if special), o.valid/i.ready pass through"
DOT_E = ("E == (sa - bias) + (sb - bias) + lsb (NaN scale: 0), special == NaN scale or "
         "NaN/Inf element, o.valid/i.ready pass through")


def dot_proofs():
    """Decomposed (see docs/formal.md): the scale path and special flag at the full k = 32;
    the sum S for a k = 2 block (the per-lane products and one adder level) in CI, at
    k = 32 in the thorough run."""
    out = []
    for fmt, slow8 in (("mxfp4", False), ("mxfp8_e4m3", True)):
        out.append(Proof(f"dot_{fmt}_k32_scale", "MXDotProduct", f"{fmt} k=32: {DOT_E}",
                         _harness(DotEquiv, fmt, 32, ("e",)), depth=1))
        out.append(Proof(f"dot_{fmt}_k2_sum", "MXDotProduct", f"{fmt} k=2: {DOT_S}",
                         _harness(DotEquiv, fmt, 2, ("s",)), depth=1, thorough=slow8))
        out.append(Proof(f"dot_{fmt}_k32_sum", "MXDotProduct", f"{fmt} k=32: {DOT_S}",
                         _harness(DotEquiv, fmt, 32, ("s",)), depth=1, thorough=True,
                         timeout=3600))
    return out


ALIGN = ("q_j == round(M_j * 2**(lsb - shared + F)) exact (saturated, signed, 0 if "
         "NaN/Inf), shared_exp, nan, scale, handshake")


def aligner_proofs():
    """k = 4 sub-blocks in CI (the per-element shift and rounding are the same logic for
    every lane; the max tree is over 4); k = 32 in the thorough run."""
    out = []
    for fmt in ("mxfp4", "mxfp8_e4m3"):
        for rnd in ("truncate", "rne"):
            out.append(Proof(f"align_{fmt}_k4_{rnd}", "Aligner", f"{fmt} k=4 {rnd}: {ALIGN}",
                             _harness(AlignerEquiv, fmt, 4, rnd), depth=1,
                             thorough=(fmt, rnd) == ("mxfp8_e4m3", "truncate")))
            out.append(Proof(f"align_{fmt}_k32_{rnd}", "Aligner", f"{fmt} k=32 {rnd}: {ALIGN}",
                             _harness(AlignerEquiv, fmt, 32, rnd), depth=1, thorough=True,
                             timeout=3600))
    return out


BLOCKS = {
    "Aligner": aligner_proofs,
    "MXDotProduct": dot_proofs,
    "ElementMultiplier": multiplier_proofs,
    "SkidBuffer": lambda: [p for p in stream_proofs() if p.block == "SkidBuffer"],
    "StreamFIFO": lambda: [p for p in stream_proofs() if p.block == "StreamFIFO"],
}


def all_proofs(blocks=None, thorough=False):
    """The proofs of ``blocks`` (all if empty), without the thorough ones unless asked."""
    names = blocks or list(BLOCKS)
    unknown = [b for b in names if b not in BLOCKS]
    if unknown:
        raise ValueError(f"unknown blocks {unknown}; known: {sorted(BLOCKS)}")
    out = []
    for b in names:
        out += [p for p in BLOCKS[b]() if thorough or not p.thorough]
    return out
