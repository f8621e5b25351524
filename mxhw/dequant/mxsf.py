"""MXSF mode switch, decoding side: MX-SAFE elements to one unpacked form per their block's
mode bit. The quantising side (the mode choice per block) is ``Requantizer("mxsf")`` in
:mod:`mxhw.dequant.requant`, whose output payload is this decoder's input payload."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import golden
from ..formats import Unpacked, signed_width, unpack
from ..lib.params import check_int

__all__ = ["MXSFDecoder", "mxsf_unpacked"]


def _modes():
    fmt = golden.formats.get("mxsf")
    w, s = fmt.candidates
    # mode S is the fp6_e3m2 value set in the low 6 bits (golden.mxsf): decode those bits
    # with the fp6_e3m2 descriptor; codes with the top 2 bits set are reserved (NaN)
    s_fp = golden.formats.get("fp6_e3m2")
    return fmt, w, s_fp


def mxsf_unpacked():
    """Common unpacked layout of both modes: ``significand`` (the wider mode's width),
    ``exponent`` (signed, the union of both ranges), ``sign``, ``is_zero``, ``is_nan``.
    Value: ``(-1)**sign * significand * 2**(exponent - (sig_bits - 1))``."""
    _, w, s = _modes()
    uw, us = Unpacked(w), Unpacked(s)
    lo = min(uw.exp_range[0], us.exp_range[0])
    hi = max(uw.exp_range[1], us.exp_range[1])
    return data.StructLayout({"significand": unsigned(max(uw.sig_bits, us.sig_bits)),
                              "exponent": signed(signed_width(lo, hi)),
                              "sign": unsigned(1), "is_zero": unsigned(1),
                              "is_nan": unsigned(1)})


class MXSFDecoder(wiring.Component):
    """Decode a block of ``k`` MXSF element codes by the block's mode bit.

    Mode 0 (W): E2M5, bias 1. Mode 1 (S): the fp6_e3m2 code in the low 6 bits; a code with
    either of the top 2 bits set is reserved and decodes to NaN (``is_nan``). Both modes
    come out in :func:`mxsf_unpacked` form (mode S significands are shifted up to the mode W
    width, so one reading rule serves both). The scale code passes through.
    Decoding reuses :func:`mxhw.formats.unpack` with the golden descriptors.

    Parameters
    ----------
    k : int
        Elements per block (32 for ``mxsf``).

    Members
    -------
    i : In(stream.Signature(StructLayout({"elements": ArrayLayout(unsigned(8), k),
        "mode": unsigned(1), "scale": unsigned(8)})))
    o : Out(stream.Signature(StructLayout({"elements": ArrayLayout(mxsf_unpacked(), k),
        "scale": unsigned(8)})))

    Latency 1 cycle; one block per cycle.
    Golden twin: ``golden.formats.get("mxsf").candidates[mode].table[code]`` (value, NaN for
    reserved codes).

    Raises
    ------
    TypeError, ValueError
        ``k`` is not a positive integer.
    """

    def __init__(self, k=32):
        check_int("k", k, 1)
        self._k = k
        self._layout = mxsf_unpacked()
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "elements": data.ArrayLayout(unsigned(8), k), "mode": unsigned(1),
                "scale": unsigned(8)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "elements": data.ArrayLayout(self._layout, k), "scale": unsigned(8)}))),
        })

    k = property(lambda self: self._k)
    latency = property(lambda self: 1)

    def elaborate(self, platform):
        m = Module()
        _, w, s = _modes()
        sb = self._layout.members["significand"].width
        shift_s = sb - Unpacked(s).sig_bits
        with m.If(self.i.valid & (~self.o.valid | self.o.ready)):
            m.d.comb += self.i.ready.eq(1)
            m.d.sync += [self.o.valid.eq(1), self.o.payload.scale.eq(self.i.payload.scale)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        mode = self.i.payload.mode
        for j in range(self._k):
            code = self.i.payload.elements[j]
            uw = unpack(m, w, code, name=f"uw{j}")
            us = unpack(m, s, code[:6], name=f"us{j}")
            reserved = code[6:].any()
            out = self.o.payload.elements[j]
            with m.If(self.i.valid & (~self.o.valid | self.o.ready)):
                m.d.sync += [
                    out.significand.eq(Mux(mode, us.significand << shift_s, uw.significand)),
                    out.exponent.eq(Mux(mode, us.exponent, uw.exponent)),
                    out.sign.eq(Mux(mode, us.sign, uw.sign)),
                    out.is_zero.eq(Mux(mode, us.is_zero & ~reserved, uw.is_zero)),
                    out.is_nan.eq(mode & reserved),
                ]
        return m
