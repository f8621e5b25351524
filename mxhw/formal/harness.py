"""Proof harnesses: each instantiates a component (from outside, unchanged) next to a
reference and states ``Assert``/``Assume`` over both. The ``sync`` domain is reset-less in
the harness: every register starts from its reset (init) value and the proof covers every
input sequence from there (a mid-run reset is not explored)."""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Const, Module, Mux, Signal, signed

from ..formats import element_format
from ..lib.signals import delay_line as delayed
from .base import Harness, balanced_sum, block_format, cycles_since_start
from .reference import rom

__all__ = ["MultiplierEquiv", "StreamContract", "delayed", "cycles_since_start"]


class MultiplierEquiv(Harness):
    """``ElementMultiplier(fmt_a, fmt_b, pipeline)`` equals ``rom_a(a) * rom_b(b)`` (0 and
    ``nonfinite`` when a code is NaN/Inf) for every code pair, ``pipeline`` cycles later.
    ``dut`` builds the component (a test passes a mutant)."""

    def __init__(self, fmt_a, fmt_b, pipeline=0, dut=None):
        from ..pe import ElementMultiplier
        super().__init__()
        self.fmt_a, self.fmt_b = element_format(fmt_a), element_format(fmt_b)
        self.pipeline = pipeline
        self.dut = (dut or ElementMultiplier)(self.fmt_a, self.fmt_b, pipeline=pipeline)
        self.a = Signal(self.fmt_a.bits)
        self.b = Signal(self.fmt_b.bits)

    def inputs(self):
        return [self.a, self.b]

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        m.submodules.dut = dut = self.dut
        m.d.comb += [dut.a.eq(self.a), dut.b.eq(self.b)]
        va, nfa = rom(m, self.fmt_a, self.a, "ref_a")
        vb, nfb = rom(m, self.fmt_b, self.b, "ref_b")
        nf = Signal()
        prod = Signal(signed(len(va) + len(vb)))
        m.d.comb += [nf.eq(nfa | nfb), prod.eq(Mux(nf, 0, va * vb))]
        prod_d = delayed(m, prod, self.pipeline, "ref_p")
        nf_d = delayed(m, nf, self.pipeline, "ref_nf")
        ready = cycles_since_start(m, self.pipeline)
        with m.If(ready):
            m.d.comb += [Assert(dut.p == prod_d, "product"),
                         Assert(dut.nonfinite == nf_d, "nonfinite")]
        return m


class StreamContract(Harness):
    """A stream component ``i`` -> ``o`` (payload passed through unchanged) against its
    contract, for every environment that obeys the stream rules.

    Data independence: the environment sends the sequence numbers 0, 1, 2, ... (mod
    ``2**width``) as payloads (assumed); the output must show them in the same order
    (``o.payload == count of transfers on o``), which rules out a lost, duplicated or
    reordered transfer for any payloads. Also asserted: ``o`` holds ``valid`` and the
    payload while not ready; at most ``capacity`` payloads are inside. Assumed: ``i``
    holds ``valid`` and the payload while not ready (the contract of the environment).
    ``o.ready`` is free (any back-pressure)."""

    def __init__(self, dut, width, capacity):
        super().__init__()
        self.dut, self.width, self.capacity = dut, width, capacity
        self.i_valid = Signal()
        self.o_ready = Signal()

    def inputs(self):
        return [self.i_valid, self.o_ready]

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        m.submodules.dut = self.submodule()
        dut = self.dut
        w = self.width
        sent = Signal(w)        # transfers on i so far
        got = Signal(w)         # transfers on o so far
        inside = Signal(range(self.capacity + 2))
        i_fire = dut.i.valid & dut.i.ready
        o_fire = dut.o.valid & dut.o.ready
        m.d.comb += [dut.i.valid.eq(self.i_valid), dut.i.payload.eq(sent),
                     dut.o.ready.eq(self.o_ready)]
        m.d.sync += [sent.eq(sent + i_fire), got.eq(got + o_fire),
                     inside.eq(inside + i_fire - o_fire)]
        # the environment: i.valid held until taken (the payload is `sent`: held too)
        i_wait = Signal()
        m.d.sync += i_wait.eq(dut.i.valid & ~dut.i.ready)
        with m.If(i_wait):
            m.d.comb += Assume(self.i_valid)
        # the block
        o_wait = Signal()
        o_prev = Signal(w)
        m.d.sync += [o_wait.eq(dut.o.valid & ~dut.o.ready), o_prev.eq(dut.o.payload)]
        with m.If(o_wait):
            m.d.comb += [Assert(dut.o.valid, "o.valid held while not ready"),
                         Assert(dut.o.payload == o_prev, "o.payload held while not ready")]
        with m.If(dut.o.valid):
            m.d.comb += Assert(dut.o.payload == got, "in order, none lost or duplicated")
            m.d.comb += Assert(inside != 0, "no output from an empty block")
        m.d.comb += [Assert(inside <= self.capacity, "capacity"),
                     Assert(((sent - got) % (1 << w)) == inside, "counts agree")]
        self.invariants(m, got=got, inside=inside)
        return m


class DotEquiv(Harness):
    """``MXDotProduct(fmt, fmt, pipeline=0)`` with ``k`` elements against the reference
    ``S = sum_j rom(a_j) * rom(b_j)`` (0 if special), ``E = (sa - bias) + (sb - bias) +
    lsb`` (a NaN scale counts as exponent 0), ``special = a scale is NaN or an element is
    NaN/Inf``; ``o.valid == i.valid``, ``i.ready == o.ready``. ``parts`` picks what is
    asserted: ``"s"``, ``"e"`` (with ``special``) or both."""

    def __init__(self, fmt, k, parts=("s", "e"), dut=None):
        from ..pe import MXDotProduct
        super().__init__()
        self.fmt = block_format(fmt, k)
        self.k, self.parts = k, parts
        self.dut = (dut or MXDotProduct)(self.fmt, self.fmt, pipeline=0)
        el = self.fmt.element
        self.a = [Signal(el.bits, name=f"a{j}") for j in range(k)]
        self.b = [Signal(el.bits, name=f"b{j}") for j in range(k)]
        self.sa = Signal(self.fmt.scale.bits)
        self.sb = Signal(self.fmt.scale.bits)
        self.valid, self.ready = Signal(), Signal()

    def inputs(self):
        return [*self.a, *self.b, self.sa, self.sb, self.valid, self.ready]

    def elaborate(self, platform):
        m = Module()
        self.setup(m)
        m.submodules.dut = dut = self.dut
        f, el = self.fmt, self.fmt.element
        pl = dut.i.payload
        m.d.comb += [pl.scale_a.eq(self.sa), pl.scale_b.eq(self.sb),
                     dut.i.valid.eq(self.valid), dut.o.ready.eq(self.ready)]
        prods, nfs = [], []
        for j in range(self.k):
            m.d.comb += [pl.a[j].eq(self.a[j]), pl.b[j].eq(self.b[j])]
            va, nfa = rom(m, el, self.a[j], f"a{j}")
            vb, nfb = rom(m, el, self.b[j], f"b{j}")
            prods.append(Mux(nfa | nfb, 0, va * vb))
            nfs += [nfa, nfb]
        sc = f.scale
        nan_a, nan_b = self.sa == sc.nan_code, self.sb == sc.nan_code
        special = Signal()
        m.d.comb += special.eq(nan_a | nan_b | Cat(*nfs).any())
        s_ref = Signal(signed(len(dut.o.payload.s) + 2))
        m.d.comb += s_ref.eq(Mux(special, 0, balanced_sum(prods)))
        ea = Mux(nan_a, 0, self.sa - sc.bias)
        eb = Mux(nan_b, 0, self.sb - sc.bias)
        e_ref = Signal(signed(len(dut.o.payload.e) + 2))
        m.d.comb += e_ref.eq(ea + eb + (el.lsb_exp * 2))
        m.d.comb += [Assert(dut.o.valid == self.valid, "o.valid == i.valid"),
                     Assert(dut.i.ready == self.ready, "i.ready == o.ready")]
        if "s" in self.parts:
            m.d.comb += Assert(dut.o.payload.s == s_ref, "S == sum of products")
        if "e" in self.parts:
            m.d.comb += [Assert(dut.o.payload.e == e_ref, "E == scale exponents + lsb"),
                         Assert(dut.o.payload.special == special, "special")]
        return m


class AlignerEquiv(Harness):
    """``Aligner(fmt with k elements, rounding, pipeline=0)`` against a reference from
    exact integers: element ``j`` is ``M_j * 2**lsb`` (``M_j = |rom(code)|``), its exponent
    ``max(floor(log2 |v|), emin)`` (a ROM computed from the value), ``shared`` the largest
    over non-zero finite elements (``emin`` if none), and ``q_j = round(M_j * 2**(lsb -
    shared + F))`` by exact integer division (truncate, or RNE with the remainder compared
    to half), saturated to ``2**(F+1) - 1``, signed; 0 for NaN/Inf; ``nan`` = a non-finite
    element or scale 0xFF; the scale passes through.

    ``parts``: ``"lanes"`` asserts every ``q_j``, ``"exp"`` the shared exponent, ``nan``,
    scale and handshake (a k = 32 proof of ``"exp"`` alone checks the max tree's width; the
    lanes are the same code for every ``j``: docs/formal.md)."""

    def __init__(self, fmt, k, rounding, dut=None, parts=("lanes", "exp")):
        from ..dequant import Aligner
        super().__init__()
        self.fmt = block_format(fmt, k)
        self.k, self.rounding, self.parts = k, rounding, tuple(parts)
        self.dut = (dut or Aligner)(self.fmt, rounding=rounding, pipeline=0)
        el = self.fmt.element
        self.codes = [Signal(el.bits, name=f"c{j}") for j in range(k)]
        self.scale = Signal(8)
        self.valid, self.ready = Signal(), Signal()

    def inputs(self):
        return [*self.codes, self.scale, self.valid, self.ready]

    def elaborate(self, platform):
        import math
        from .reference import exact_ints
        m = Module()
        self.setup(m)
        m.submodules.dut = dut = self.dut
        el = self.fmt.element
        F = dut.out_width - 2
        lsb = el.lsb_exp
        emin = lsb + el.man_bits
        ints = exact_ints(el)
        exps = [max(math.floor(math.log2(abs(v) * 2.0 ** lsb)), emin) if v else emin
                for v in ints]
        m.d.comb += [dut.i.valid.eq(self.valid), dut.o.ready.eq(self.ready),
                     dut.i.payload.scale.eq(self.scale)]
        mags, negs, exs, live, bad = [], [], [], [], []
        for j, c in enumerate(self.codes):
            m.d.comb += dut.i.payload.elements[j].eq(c)
            v, nf = rom(m, el, c, f"c{j}")
            e = Signal(signed(10), name=f"exp{j}")
            with m.Switch(c):
                for code, x in enumerate(exps):
                    with m.Case(code):
                        m.d.comb += e.eq(x)
            mags.append(Mux(v < 0, -v, v)[:len(v)])
            negs.append(v < 0)
            exs.append(e)
            live.append(~nf & (v != 0))
            bad.append(nf)
        # a running maximum, one signal per step (an expression that used ``acc`` twice per
        # step would double at every lane: 2**k nodes, which never finished at k = 32)
        acc = Const(emin, signed(10))
        for j, (e, l) in enumerate(zip(exs, live)):
            nxt = Signal(signed(10), name=f"max{j}")
            m.d.comb += nxt.eq(Mux(l & (e > acc), e, acc))
            acc = nxt
        shared = acc
        # r = shared - F - lsb >= -(F + 1): scale everything up by C to shift right only
        C = F + 2
        r = Signal(range(64))
        m.d.comb += r.eq(shared - F - lsb + C)
        for j in range(self.k):
            x = Signal(len(mags[j]) + C, name=f"x{j}")
            q = Signal(len(x), name=f"q{j}")
            rem = Signal(len(x), name=f"rem{j}")
            m.d.comb += [x.eq(mags[j] << C), q.eq(x >> r), rem.eq(x - (q << r))]
            half = Signal(len(x) + 1, name=f"half{j}")
            m.d.comb += half.eq((1 << r) >> 1)
            qr = Signal(len(x) + 1, name=f"qr{j}")
            if self.rounding == "rne":
                up = (r != 0) & ((rem > half) | ((rem == half) & q[0]))
                m.d.comb += qr.eq(q + up)
            else:
                m.d.comb += qr.eq(q)
            top = (1 << (F + 1)) - 1
            sat = Mux(qr > top, top, qr)
            ref = Signal(signed(F + 3), name=f"ref{j}")
            m.d.comb += ref.eq(Mux(bad[j], 0, Mux(negs[j], -sat, sat)))
            if "lanes" in self.parts:
                m.d.comb += Assert(dut.o.payload.ints[j] == ref, f"q{j}")
        if "exp" not in self.parts:
            return m
        nan = Signal()
        m.d.comb += nan.eq(Cat(*bad).any() | (self.scale == 0xFF))
        m.d.comb += [Assert(dut.o.payload.shared_exp == shared, "shared_exp"),
                     Assert(dut.o.payload.nan == nan, "nan"),
                     Assert(dut.o.payload.scale == self.scale, "scale passes"),
                     Assert(dut.o.valid == self.valid, "o.valid == i.valid"),
                     Assert(dut.i.ready == self.ready, "i.ready == o.ready")]
        return m
