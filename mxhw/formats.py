"""Hardware views of the golden number formats.

Everything here is derived from a :class:`mxhw.golden.formats.ElementFormat` descriptor;
no width is written down by hand.

* :func:`layout_of` -- the ``lib.data`` layout of an element *code* as it crosses ports:
  ``fp``: ``mantissa``, ``exponent``, ``sign`` (LSB first); ``int``: ``value`` (signed);
  ``table`` and ``pow2``: ``code``.
* :class:`Unpacked` -- the internal (decoded) form of an element: ``significand``,
  ``exponent``, ``sign``, ``is_zero`` and, where the format has them, ``is_nan`` /
  ``is_inf``. The value of an unpacked element is exactly::

      (-1)**sign * significand * 2**(exponent - (sig_bits - 1))

  ``fp``: ``significand`` is the mantissa with its hidden bit (``man_bits + 1`` bits) and
  ``exponent`` the unbiased exponent (``1 - bias`` for subnormals and zero), the usual
  meaning. ``int``: ``significand`` is the magnitude (``bits`` bits, so the most negative
  code fits) and ``exponent`` the constant ``bits - 1 - frac_bits``. ``table``: the odd part
  of ``|int_table[code]|`` and the exponent that places it (decoded by a case on the code).
  ``pow2`` (E8M0): significand 1, exponent ``code - bias``. Zero has significand 0 and the
  smallest exponent of the format.
* :func:`unpack` -- combinational decode logic (code view -> unpacked view).
* :class:`ElementDecoder` -- the same as a component, optionally registered.
* :func:`fixed_point` / :func:`fixed_shape` -- an element as an exact signed integer at the
  format's ``lsb_exp`` (``value == int * 2**fmt.lsb_exp``, golden ``int_table``).
* :func:`lsb_shift` -- for an unpacked element, the left shift that turns its significand
  into that fixed-point magnitude (``significand << shift``; never negative).
* :func:`operand_element` -- the element of a *block* format as a datapath sees it: the
  element format itself, or, for a format with several element modes chosen per block
  (MXSF), one ``table`` format over ``(mode, code)`` pairs (:func:`moded_code`) whose
  :func:`unpack` decodes each mode structurally (no table ROM). MX+ (``mxfp4_plus``, ...):
  one ``table`` format over ``(ext, code)`` pairs (:func:`operand_code`), ``ext`` = 1 for
  the block's extended element (decoded as ``golden.mxplus.ext_decode``).

Golden twin: ``fmt.table`` / ``fmt.int_table`` / ``fmt.nonfinite_mask``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from . import golden
from .golden import mxplus as _mxplus
from .golden.formats import BlockFormat, ElementFormat
from .lib.params import check_pipeline

__all__ = ["lookup_format", "element_format", "layout_of", "Unpacked", "unpack", "ElementDecoder",
           "fixed_point", "fixed_shape", "lsb_shift", "signed_width", "int_range",
           "operand_element", "moded_code", "operand_code", "code_bits", "is_moded",
           "scale_exp_range"]


def lookup_format(fmt, name="fmt", kind="element"):
    """The ``kind`` (``"element"`` or ``"block"``) format named by ``fmt``, a registry name
    or a descriptor. Raises ``TypeError`` for anything else and ``ValueError`` for an
    unknown name, naming the parameter ``name`` in the message."""
    cls, names, article = ((ElementFormat, golden.formats.element_names, "an")
                           if kind == "element"
                           else (BlockFormat, golden.formats.block_names, "a"))
    if isinstance(fmt, str):
        try:
            fmt = golden.formats.get(fmt)
        except KeyError:
            raise ValueError(f"{name} must be {article} {kind} format name, one of "
                             f"{', '.join(names())}; not {fmt!r}") from None
    if not isinstance(fmt, cls):
        raise TypeError(f"{name} must be {article} {kind} format (a name or "
                        f"{article} {cls.__name__}), not {fmt!r}")
    return fmt


def element_format(fmt, name="fmt"):
    """The :class:`ElementFormat` named by ``fmt`` (a registry name or a descriptor).

    Raises ``TypeError`` for anything else (block formats included) and ``ValueError`` for
    an unknown name, naming the parameter ``name`` in the message.
    """
    return lookup_format(fmt, name, "element")


def scale_exp_range(fmt):
    """``(min, max)`` exponent of the finite codes of a power-of-two scale: ``fmt`` is the
    scale's element format or a block format (its ``scale``)."""
    scale = fmt.scale if isinstance(fmt, BlockFormat) else fmt
    if scale.kind != "pow2":
        raise ValueError(f"{scale.name} is not a power-of-two scale format")
    top = scale.n_codes - 1 - (1 if scale.has_nan else 0)
    return -scale.bias, top - scale.bias


def signed_width(lo, hi):
    """Smallest two's-complement width holding every integer in ``[lo, hi]`` (at least 1)."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi < (1 << (w - 1))):
        w += 1
    return w


def int_range(fmt):
    """``(min, max)`` of ``fmt.int_table`` over finite codes, as Python ints."""
    fmt = element_format(fmt)
    fin = ~fmt.nonfinite_mask
    vals = [int(v) for v in fmt.int_table[fin]]
    return min(vals), max(vals)


# ---- element modes chosen per block (MXSF) ----------------------------------------------

#: moded element format -> per mode, the ``(format, bits)`` :func:`unpack` decodes
_MODED: dict = {}


def _core(fmt):
    """``(core, n)``: how :func:`unpack` decodes a candidate ``fmt`` of a moded format.

    A ``table`` format whose codes ``0 .. 2**n - 1`` hold exactly the values of a registered
    ``fp`` or ``int`` format of ``n`` bits and whose other codes are NaN (reserved; MXSF
    mode S: fp6_e3m2 in the low 6 bits) decodes as that format on the low ``n`` bits plus
    a NaN flag for the rest; any other format as itself (``n = fmt.bits``)."""
    if fmt.kind == "table":
        t = fmt.table
        for name in golden.formats.element_names():
            c = golden.formats.get(name)
            n = c.bits
            if (c.kind in ("fp", "int") and n < fmt.bits and np.isnan(t[1 << n:]).all()
                    and np.array_equal(t[:1 << n], c.table, equal_nan=True)
                    and np.array_equal(np.signbit(t[:1 << n]), np.signbit(c.table))):
                return c, n
    return fmt, fmt.bits


@functools.cache
def _moded_element(fmt):
    cands = fmt.candidates
    bits = cands[0].bits
    if any(c.bits != bits for c in cands):
        raise ValueError(f"{fmt.name}'s element modes differ in width "
                         f"({', '.join(f'{c.name}: {c.bits}' for c in cands)}); the "
                         f"datapath takes modes of equal width")
    if any(np.isinf(c.table).any() for c in cands):
        raise ValueError(f"{fmt.name} has an element mode with Inf codes; the datapath "
                         f"takes moded formats without Inf")
    values = np.full((1 << fmt.mode_bits, 1 << bits), np.nan)
    for i, c in enumerate(cands):
        values[i] = c.table
    elem = golden.formats.table_format(
        f"{fmt.name}_moded", values.ravel(),
        doc=f"The elements of {fmt.name} with their block's mode: code = mode << {bits} | "
            f"element code; mode i decodes as {', '.join(c.name for c in cands)} (mode "
            f"order); unused modes are NaN.")
    cores = tuple(_core(c) for c in cands)
    u = Unpacked(elem)
    for core, _ in cores:
        uc = Unpacked(core)
        d = u.sig_bits - uc.sig_bits               # exponent offset in unpack
        if d < 0 or uc.exp_range[0] + d < u.exp_range[0] or uc.exp_range[1] + d > u.exp_range[1]:
            raise ValueError(f"{fmt.name}: element mode {core.name} does not fit one "
                             f"unpacked form with the other modes")
    _MODED[elem] = (bits, cores)
    return elem


def operand_element(fmt):
    """The element of the block format ``fmt`` as a datapath multiplies it.

    One element mode: ``fmt.element``. Several, chosen per block (MXSF: W and S), one
    ``table`` :class:`ElementFormat` over ``(mode, code)`` pairs: code ``mode << bits |
    element code`` (:func:`moded_code`; ``bits + fmt.mode_bits`` bits), mode ``i`` valued
    by ``fmt.candidates[i]``. Its ``lsb_exp`` is the finest of the modes' grids and its
    ``int_table`` the exact fixed-point form on it, as
    :func:`mxhw.golden.arith.element_ints`; everything derived from element descriptors
    (:func:`int_range`, product widths, :class:`Unpacked`) follows. :func:`unpack`
    decodes it by mode, each mode with its own format's logic, into one unpacked form.

    Raises ``ValueError`` if the modes differ in width or have Inf codes.
    """
    if fmt.codec == "mxplus":
        return _mxplus_element(fmt)
    return fmt.element if len(fmt.candidates) == 1 else _moded_element(fmt)


@functools.cache
def _mxplus_element(fmt):
    """:func:`operand_element` of an MX+ block format: code ``ext << bits | code``, ``ext``
    0 decoding as the plain element, 1 as the extended element (``golden.mxplus``)."""
    e = fmt.element
    ext = _mxplus.ext_decode(fmt, np.arange(e.n_codes))
    elem = golden.formats.table_format(
        f"{fmt.name}_operand", np.concatenate([e.table, ext]),
        doc=f"The elements of {fmt.name} with their extended flag: code = ext << {e.bits} | "
            f"element code; ext 0 decodes as {e.name}, ext 1 as the block maximum's "
            f"extended encoding (golden.mxplus.ext_decode).")
    k, emax = _mxplus.ext_bits(fmt), e.emax

    def ext_mode(m, raw, sb):
        # (2**k + f) * 2**(emax - k) on the reading rule: significand << (sb - 1 - k)
        sig = Cat(raw[:k], 1) << (sb - 1 - k)
        return raw[k], sig, emax, 0, 0

    _MODED[elem] = (e.bits, ((e, e.bits), ext_mode))
    return elem


def is_moded(fmt):
    """``fmt`` (an element format) is an :func:`operand_element` with several modes."""
    return fmt in _MODED


def moded_code(fmt, code, mode):
    """The code of :func:`operand_element` of the block format ``fmt``: ``code`` itself
    (one mode), or ``Cat(code, mode)``."""
    return Cat(code, mode) if fmt.mode_bits else code


def operand_code(fmt, code, mode=None, ext=None):
    """The code of :func:`operand_element` of the block format ``fmt``: ``code`` with the
    block's ``mode`` (MXSF, :func:`moded_code`) or the element's extended flag ``ext``
    (MX+: 1 on the block's extended element)."""
    if fmt.codec == "mxplus":
        return Cat(code, ext)
    return moded_code(fmt, code, mode)


def code_bits(fmt):
    """Bits of an element code of the block format ``fmt`` as the arrays' PEs take it: the
    element's, plus MX+'s extended flag (the mode bits of MXSF travel apart)."""
    return fmt.element.bits + (1 if fmt.codec == "mxplus" else 0)


# ---- code layouts ----------------------------------------------------------------------

def layout_of(fmt):
    """``lib.data`` layout of an element code of ``fmt``, generated from the descriptor."""
    fmt = element_format(fmt)
    if fmt.kind == "fp":
        return data.StructLayout({"mantissa": unsigned(fmt.man_bits),
                                  "exponent": unsigned(fmt.exp_bits),
                                  "sign": unsigned(1)})
    if fmt.kind == "int":
        return data.StructLayout({"value": signed(fmt.bits)})
    return data.StructLayout({"code": unsigned(fmt.bits)})


# ---- unpacked form ---------------------------------------------------------------------

def _odd_part(v):
    """``(odd, tz)`` with ``v == odd << tz`` (``(0, 0)`` for zero)."""
    if v == 0:
        return 0, 0
    tz = (v & -v).bit_length() - 1
    return v >> tz, tz


def _unpack_spec(fmt):
    """Widths and exponent range of the unpacked form: ``(sig_bits, exp_lo, exp_hi)``."""
    if fmt.kind == "fp":
        return fmt.man_bits + 1, 1 - fmt.bias, (1 << fmt.exp_bits) - 1 - fmt.bias
    if fmt.kind == "int":
        e = fmt.bits - 1 - fmt.frac_bits
        return fmt.bits, e, e
    if fmt.kind == "pow2":
        return 1, -fmt.bias, (1 << fmt.bits) - 1 - fmt.bias
    # table: the odd part of every |int_table| entry
    parts = [_odd_part(abs(int(v))) for v in fmt.int_table]
    sig_bits = max(1, max(o.bit_length() for o, _ in parts))
    tzs = [tz for _, tz in parts]
    return sig_bits, fmt.lsb_exp + sig_bits - 1, fmt.lsb_exp + sig_bits - 1 + max(tzs)


def _table_entries(fmt):
    """Per code of a ``table`` format: ``(sign, significand, exponent, is_zero, is_nan)``."""
    sig_bits, _, _ = _unpack_spec(fmt)
    out = []
    for code in range(fmt.n_codes):
        v = fmt.table[code]
        iv = int(fmt.int_table[code])
        odd, tz = _odd_part(abs(iv))
        out.append((int(bool(np.signbit(v))) if not math.isnan(v) else 0, odd,
                    fmt.lsb_exp + sig_bits - 1 + tz, int(iv == 0 and not math.isnan(v)),
                    int(math.isnan(v))))
    return out


class Unpacked(data.StructLayout):
    """Unpacked (decoded) element layout for ``fmt``; see the module docstring.

    Fields: ``significand`` (``unsigned(sig_bits)``), ``exponent`` (signed, wide enough for
    the format's exponent range), ``sign``, ``is_zero``, and ``is_nan`` / ``is_inf`` when
    some code of the format decodes to NaN / Inf.

    Parameters
    ----------
    fmt : str or ElementFormat
    """

    def __init__(self, fmt):
        fmt = element_format(fmt)
        sig_bits, lo, hi = _unpack_spec(fmt)
        self._fmt = fmt
        self._sig_bits = sig_bits
        self._exp_range = (lo, hi)
        members = {"significand": unsigned(sig_bits),
                   "exponent": signed(signed_width(lo, hi)),
                   "sign": unsigned(1), "is_zero": unsigned(1)}
        if np.isnan(fmt.table).any():
            members["is_nan"] = unsigned(1)
        if np.isinf(fmt.table).any():
            members["is_inf"] = unsigned(1)
        super().__init__(members)

    fmt = property(lambda self: self._fmt)
    sig_bits = property(lambda self: self._sig_bits, doc="Width of the significand.")
    exp_range = property(lambda self: self._exp_range,
                         doc="``(smallest, largest)`` exponent of the format.")

    @property
    def max_shift(self):
        """Largest :func:`lsb_shift` of the format."""
        lo, hi = self._exp_range
        return hi - (self._sig_bits - 1) - self._fmt.lsb_exp

    def value(self, fields):
        """Exact value (float) of a dict of unpacked field values: the reading rule."""
        if fields.get("is_nan"):
            return math.nan
        sign = -1.0 if fields["sign"] else 1.0
        if fields.get("is_inf"):
            return sign * math.inf
        return sign * math.ldexp(fields["significand"], fields["exponent"] - (self._sig_bits - 1))


def unpack(m, fmt, code, name=None):
    """Add combinational decode logic for ``code`` (a :func:`layout_of` view, or a plain
    value of ``fmt.bits`` bits) to module ``m``; returns a ``Signal(Unpacked(fmt))``."""
    fmt = element_format(fmt)
    layout = Unpacked(fmt)
    u = Signal(layout, name=name)
    raw = code.as_value() if isinstance(code, data.View) else code
    raw = raw[:fmt.bits]
    lo, _ = layout.exp_range
    if fmt in _MODED:
        _unpack_moded(m, fmt, raw, u)
    elif fmt.kind == "fp":
        man = raw[:fmt.man_bits]
        exp = raw[fmt.man_bits:fmt.man_bits + fmt.exp_bits]
        top = exp == (1 << fmt.exp_bits) - 1
        sub = exp == 0
        m.d.comb += [
            u.sign.eq(raw[-1]),
            u.significand.eq(man | (~sub << fmt.man_bits)),
            u.exponent.eq(Mux(sub, 1, exp) - fmt.bias),
            u.is_zero.eq(sub & (man == 0)),
        ]
        if fmt.special == "ieee":
            m.d.comb += [u.is_inf.eq(top & (man == 0)), u.is_nan.eq(top & (man != 0))]
        elif fmt.special == "fn":
            m.d.comb += u.is_nan.eq(top & (man == (1 << fmt.man_bits) - 1))
    elif fmt.kind == "int":
        v = raw.as_signed()
        m.d.comb += [
            u.sign.eq(v < 0),
            u.significand.eq(abs(v)),
            u.exponent.eq(lo),
            u.is_zero.eq(v == 0),
        ]
    elif fmt.kind == "pow2":
        m.d.comb += [u.significand.eq(1), u.exponent.eq(raw - fmt.bias)]
        if fmt.special == "fn":
            m.d.comb += u.is_nan.eq(raw == fmt.n_codes - 1)
    else:  # table: a case (ROM) on the code
        with m.Switch(raw):
            for code_value, (s, sig, e, z, nan) in enumerate(_table_entries(fmt)):
                with m.Case(code_value):
                    m.d.comb += [u.sign.eq(s), u.significand.eq(sig), u.exponent.eq(e),
                                 u.is_zero.eq(z)]
                    if "is_nan" in dict(iter(layout)):
                        m.d.comb += u.is_nan.eq(nan)
    return u


def _unpack_moded(m, fmt, raw, u):
    """:func:`unpack` of an :func:`operand_element` with several modes: each mode's
    decoder on the low bits, its value moved onto ``u``'s reading rule (same significand
    LSB weight), the mode bits selecting; zero gets the smallest exponent."""
    layout = u.shape()
    sb, (lo, _) = layout.sig_bits, layout.exp_range
    bits, cores = _MODED[fmt]
    per_mode = []
    for core in cores:
        if callable(core):                         # a mode decoded by a function (MX+)
            per_mode.append(core(m, raw[:bits], sb))
            continue
        core, n = core
        uc = unpack(m, core, raw[:n])
        # value = sig * 2**(e - (sb_c - 1)) = sig * 2**(E - (sb - 1))
        e = uc.exponent + (sb - Unpacked(core).sig_bits)
        nan, zero = _nonfinite(uc), uc.is_zero
        if n < bits:                               # reserved codes: NaN
            reserved = raw[n:bits].any()
            nan, zero = nan | reserved, zero & ~reserved
        per_mode.append((uc.sign, uc.significand, Mux(zero, lo, e), zero, nan))
    has_nan = "is_nan" in dict(iter(layout))
    if has_nan:
        m.d.comb += u.is_nan.eq(1)                 # unused modes: NaN
    targets = (u.sign, u.significand, u.exponent, u.is_zero) + ((u.is_nan,) if has_nan else ())
    with m.Switch(raw[bits:]):
        for i, fields in enumerate(per_mode):
            with m.Case(i):
                m.d.comb += [f.eq(v) for f, v in zip(targets, fields)]


def lsb_shift(u):
    """``significand << lsb_shift(u)`` is the element's magnitude in units of
    ``2**fmt.lsb_exp`` (for an :class:`Unpacked` view ``u``); an unsigned value."""
    layout = u.shape()
    off = (layout.sig_bits - 1) + layout.fmt.lsb_exp
    width = max(1, layout.max_shift.bit_length())
    return (u.exponent - off).as_unsigned()[:width]


def fixed_shape(fmt):
    """Signed shape of :func:`fixed_point` for ``fmt``: wide enough for every ``int_table``
    entry."""
    return signed(signed_width(*int_range(fmt)))


def fixed_point(m, fmt, code, name=None):
    """The element ``code`` of ``fmt`` as an exact signed integer at ``fmt.lsb_exp``
    (golden ``int_table[code]``; 0 for NaN/Inf codes). Adds logic to ``m``; returns a
    ``Signal(fixed_shape(fmt))``."""
    fmt = element_format(fmt)
    u = unpack(m, fmt, code)
    out = Signal(fixed_shape(fmt), name=name)
    mag = u.significand << lsb_shift(u)
    bad = _nonfinite(u)
    m.d.comb += out.eq(Mux(bad, 0, Mux(u.sign, -mag, mag)))
    return out


def _nonfinite(u):
    members = dict(iter(u.shape()))
    bad = 0
    if "is_nan" in members:
        bad = bad | u.is_nan
    if "is_inf" in members:
        bad = bad | u.is_inf
    return bad


class ElementDecoder(wiring.Component):
    """Decode an element code of ``fmt`` into its :class:`Unpacked` form.

    Parameters
    ----------
    fmt : str or ElementFormat
        Any golden element format (``fp``, ``int``, ``table``, ``pow2``).
    pipeline : int
        0: combinational; 1: output registered.

    Members
    -------
    code : In(layout_of(fmt))
    unpacked : Out(Unpacked(fmt))

    Latency ``pipeline`` cycles; one element per cycle.
    Golden twin: ``fmt.table`` (value), ``fmt.nonfinite_mask``; the reading rule is
    :meth:`Unpacked.value`.

    Raises
    ------
    TypeError, ValueError
        ``fmt`` is not an element format; ``pipeline`` is not an integer in 0..1.
    """

    def __init__(self, fmt, pipeline=0):
        fmt = element_format(fmt)
        check_pipeline(pipeline, 1)
        self._fmt = fmt
        self._pipeline = pipeline
        super().__init__({"code": In(layout_of(fmt)), "unpacked": Out(Unpacked(fmt))})

    fmt = property(lambda self: self._fmt)
    latency = property(lambda self: self._pipeline)

    def elaborate(self, platform):
        m = Module()
        u = unpack(m, self._fmt, self.code, name="u")
        domain = m.d.sync if self._pipeline else m.d.comb
        domain += self.unpacked.eq(u)
        return m
