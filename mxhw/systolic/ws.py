"""The weight-stationary dataflow of :class:`~mxhw.systolic.SystolicArray`: PE ``(r, c)``
holds weight ``B[k0 + r, n0 + c]`` of a pass, activation rows stream through, exact column
sums go to per-column block and accumulator stages. See ``docs/systolic.md``."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..mem.fifo import StreamFIFO
from ..formats import operand_element
from ..pe.multiplier import ElementMultiplier
from .fp32acc import F32_INF, F32_NAN, f32_add, int_to_f32, product_class
from ..lib.signals import delay_line, stage
from ..lib.params import check_int
from .grid import (accumulate, array_formats, block_sum_width, block_to_grid, check_acc,
                   check_pe_pipeline, grid_shift_from_sum, mode_port, out_layout)
from .blockscale import block_scale, check_block_scaled, scale_block_sum
from .operands import edge_code, index_fields

__all__ = ["WeightStationaryCore", "ws_in_layout", "ws_latency"]


def ws_in_layout(fmt_a, fmt_b, rows, cols):
    """Layout of a weight-stationary transfer (see :class:`SystolicArray`)."""
    return data.StructLayout({
        "a": data.ArrayLayout(unsigned(fmt_a.element.bits), rows),
        "a_scale": unsigned(fmt_a.scale.bits),
        **({"a_mode": mode_port(fmt_a)} if fmt_a.mode_bits else {}),
        **index_fields(fmt_a, "a_index"),
        "w": data.ArrayLayout(unsigned(fmt_b.element.bits), cols),
        "w_scale": data.ArrayLayout(unsigned(fmt_b.scale.bits), cols),
        **({"w_mode": data.ArrayLayout(mode_port(fmt_b), cols)} if fmt_b.mode_bits else {}),
        **index_fields(fmt_b, "w_index", cols),
        "act": 1, "w_valid": 1,
        "block_first": 1, "block_end": 1, "tile_first": 1, "last": 1,
    })


def _stages(pipeline):
    """(product register 0/1, block-to-grid register stages 0..3)."""
    return min(pipeline, 1), max(pipeline - 1, 0)


def ws_latency(rows, cols, pipeline):
    """Cycles from a last-pass activation transfer to its result row valid on ``o``."""
    pm, pg = _stages(pipeline)
    # pm + pg == pipeline; + the result register, + the output queue (2)
    return rows + cols + pm + pg + 3


class WeightStationaryCore(wiring.Component):
    """The weight-stationary array (:class:`~mxhw.systolic.SystolicArray` with
    ``dataflow="weight_stationary"``, which documents the ports and the host's schedule): edge registers, the PE grid with active and shadow
    weight registers, the column stages and the output queue.

    Block-end register stages (``pipeline - 1``, up to 3): ``fixed``, those of
    :func:`~mxhw.systolic.grid.block_to_grid`; ``fp32``, 1 captures the finished block
    sum, its exponent and flags, 2 the block's float32 value, 3 cuts the float32
    conversion after its leading-one detection. ``pipeline >= 1`` registers each PE's
    product.

    Parameters
    ----------
    rows, cols, depth : int
        Array shape and activation rows per pass, each >= 1.
    fmt_a, fmt_b : str or BlockFormat
        Operand block formats (:func:`~mxhw.systolic.grid.array_block_format`), equal
        block sizes.
    acc : golden.arith.Accumulation
        ``fixed`` or ``fp32``.
    pipeline : int
        0..4.

    Members
    -------
    i : In(stream.Signature(ws_in_layout(...)))
    o : Out(stream.Signature(out_layout(acc, cols)))

    Latency :func:`ws_latency` from a last-pass activation transfer to its result row;
    throughput one transfer per cycle. Golden twin: :func:`mxhw.golden.arith.gemm`.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """

    def __init__(self, rows, cols, fmt_a, fmt_b, acc, pipeline, depth):
        check_int("rows", rows, 1)
        check_int("cols", cols, 1)
        fmt_a, fmt_b = array_formats(fmt_a, fmt_b)
        check_acc(acc)
        check_pe_pipeline(pipeline)
        check_int("depth", depth, 1)
        check_block_scaled(fmt_a, fmt_b, acc)
        self.rows, self.cols, self.depth = rows, cols, depth
        self.fmt_a, self.fmt_b, self.acc, self.pipeline = fmt_a, fmt_b, acc, pipeline
        self.k = fmt_a.block_size
        self.in_layout = ws_in_layout(fmt_a, fmt_b, rows, cols)
        self.out_layout = out_layout(acc, cols)
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m, arr = Module(), self
        R, C, D = arr.rows, arr.cols, arr.depth
        fa, fb, acc, k = arr.fmt_a, arr.fmt_b, arr.acc, arr.k
        pm, pg = _stages(arr.pipeline)
        ea, eb = operand_element(fa), operand_element(fb)   # MXSF: codes with their mode
        sw = block_sum_width(ea, eb, k)
        lsb_exp = ea.lsb_exp + eb.lsb_exp

        def delay(sig, n, name, keep=False):
            return delay_line(m, sig, n, name, keep)

        # ---- output queue and credits: a producing transfer needs a reserved queue entry
        qdepth = ws_latency(R, C, arr.pipeline) + 2
        m.submodules.outq = outq = StreamFIFO(arr.out_layout, qdepth)
        m.d.comb += [arr.o.valid.eq(outq.o.valid), arr.o.payload.eq(outq.o.payload),
                     outq.o.ready.eq(arr.o.ready)]
        credit = Signal(range(qdepth + 1), init=qdepth)
        producing = arr.i.payload.act & arr.i.payload.last
        m.d.comb += arr.i.ready.eq(~producing | (credit != 0))
        take = arr.i.valid & arr.i.ready
        pop = outq.o.valid & outq.o.ready
        m.d.sync += credit.eq(credit + pop - (take & producing))

        # ---- edge register: weight row index and pass start counted here
        x = Signal(arr.in_layout)
        widx, acnt = Signal(range(R)), Signal(range(D))
        xwidx = Signal(range(R))
        act_e, start_e, wv_e = Signal(), Signal(), Signal()    # registered, valid-qualified
        p = arr.i.payload
        m.d.sync += [act_e.eq(take & p.act), start_e.eq(take & p.act & (acnt == 0)),
                     wv_e.eq(take & p.w_valid)]
        # the wide operand register loads every cycle (no enable: ``take`` would fan out to
        # every bit); act_e / wv_e say what it holds
        m.d.sync += [x.eq(p), xwidx.eq(widx)]
        with m.If(take):
            with m.If(p.w_valid):
                m.d.sync += widx.eq(Mux(widx == R - 1, 0, widx + 1))
            with m.If(p.act):
                m.d.sync += acnt.eq(Mux(acnt == D - 1, 0, acnt + 1))
        # MX+: the block position of a pass's first K row (0, R, 2R, ... < k: every pass
        # has D activation transfers and R weight rows), for the extended element's flag
        apos, wpos = Signal(range(k + R)), Signal(range(k + R))
        xapos, xwpos = Signal.like(apos), Signal.like(wpos)
        if fa.index_bits or fb.index_bits:
            def next_pass(pos):
                return Mux(pos + R >= k, 0, pos + R)
            m.d.sync += [xapos.eq(apos), xwpos.eq(wpos + widx)]
            with m.If(take & p.act & (acnt == D - 1)):
                m.d.sync += apos.eq(next_pass(apos))
            with m.If(take & p.w_valid & (widx == R - 1)):
                m.d.sync += wpos.eq(next_pass(wpos))

        # ---- the PE grid
        # from the left (per row): activation code (with the row's block mode), act, start
        a_codes = [edge_code(fa, x.a[r], x.a_mode if fa.mode_bits else None, xapos + r,
                             x.a_index if fa.index_bits else None, x.a_scale)
                   for r in range(R)]
        # (the control registers, equal in every row / column, are kept apart: delay_line)
        left = [(delay(a_codes[r], r, f"a{r}"), delay(act_e, r, f"act{r}", True),
                 delay(start_e, r, f"st{r}", True)) for r in range(R)]
        # from above (per column): weight code (with the column's block mode), load strobe,
        # row index; the mode is held beside the code in the PE's weight registers
        w_codes = [edge_code(fb, x.w[c], x.w_mode[c] if fb.mode_bits else None, xwpos,
                             x.w_index[c] if fb.index_bits else None, x.w_scale[c])
                   for c in range(C)]
        top = [(delay(w_codes[c], c, f"w{c}"), delay(wv_e, c, f"wv{c}", True),
                delay(xwidx, c, f"wi{c}", True)) for c in range(C)]
        nf = 3 if acc.mode == "fp32" else 1     # partial sums' flags (see _product_flags)
        psum = [(Const(0, signed(sw)), Const(0, nf))] * C
        for r in range(R):
            h = left[r]
            for c in range(C):
                a, act, start = h
                w, wv, wi = top[c]
                w_act = Signal(unsigned(eb.bits), name=f"wa_{r}_{c}")
                w_sh = Signal(unsigned(eb.bits), name=f"ws_{r}_{c}")
                with m.If(act & start):
                    m.d.sync += w_act.eq(w_sh)
                with m.If(wv & (wi == r)):
                    m.d.sync += w_sh.eq(w)
                mul = ElementMultiplier(ea, eb, pipeline=pm)
                m.submodules[f"mul_{r}_{c}"] = mul
                m.d.comb += [mul.a.eq(a), mul.b.eq(Mux(start, w_sh, w_act))]
                s_out = Signal(signed(sw), name=f"ps_{r}_{c}")
                f_out = Signal(nf, name=f"pf_{r}_{c}")
                s_in, f_in = psum[c]
                m.d.sync += [s_out.eq(s_in + mul.p),
                             f_out.eq(f_in | _product_flags(m, arr, mul, pm, f"pc_{r}_{c}"))]
                psum[c] = (s_out, f_out)
                h = tuple(delay(s_, 1, f"h{r}_{c}_{n}", n > 0) for n, s_ in enumerate(h))
                top[c] = tuple(delay(s_, 1, f"v{r}_{c}_{n}", n > 0) for n, s_ in enumerate(top[c]))

        # ---- side information to the bottom of each column, on the partial sums' wavefront
        side = data.StructLayout({"act": 1, "start": 1, "block_first": 1, "block_end": 1,
                                  "tile_first": 1, "last": 1, "w_valid": 1,
                                  "a_scale": unsigned(fa.scale.bits)})
        si0 = Signal(side)
        m.d.comb += [si0.act.eq(act_e), si0.start.eq(start_e), si0.w_valid.eq(wv_e),
                     si0.block_first.eq(x.block_first), si0.block_end.eq(x.block_end),
                     si0.tile_first.eq(x.tile_first), si0.last.eq(x.last),
                     si0.a_scale.eq(x.a_scale)]
        si = delay(si0, R + pm, "si")
        emits = []
        for c in range(C):
            if c:
                si = delay(si, 1, f"si{c}")
            w_scale = delay(x.w_scale[c], R + pm + c, f"wsc{c}")
            s_b, f_b = psum[c]
            arrive = si.act
            # B scale of the pass: shadow loads with the weights, swaps at the pass start
            bs_act = Signal(unsigned(fb.scale.bits), name=f"bs_act{c}")
            bs_sh = Signal(unsigned(fb.scale.bits), name=f"bs_sh{c}")
            b_scale = Signal(unsigned(fb.scale.bits), name=f"bs{c}")
            m.d.comb += b_scale.eq(Mux(si.start, bs_sh, bs_act))
            with m.If(arrive & si.start):
                m.d.sync += bs_act.eq(bs_sh)
            with m.If(si.w_valid):
                m.d.sync += bs_sh.eq(w_scale)

            # ring of block sums so far and their flags, one entry per activation row; the
            # flags: fixed, the tile so far is NaN; fp32, the block so far has a NaN, +Inf,
            # -Inf (bits 0, 1, 2)
            ring_s = [Signal(signed(sw), name=f"rs{c}_{n}") for n in range(D)]
            ring_f = [Signal(nf, name=f"rf{c}_{n}") for n in range(D)]
            s_new = Signal(signed(sw), name=f"s_new{c}")
            f_new = Signal(nf, name=f"f_new{c}")
            # NVFP4: E4M3 scales, their significands' product ``sig`` (blockscale.py)
            t, off, nan, sig = block_scale(m, fa, fb, si.a_scale, b_scale, acc, lsb_exp)
            f_reset = si.block_first if acc.mode == "fp32" else si.block_first & si.tile_first
            m.d.comb += [
                s_new.eq(Mux(si.block_first, 0, ring_s[-1]) + s_b),
                f_new.eq(Mux(f_reset, 0, ring_f[-1]) | f_b | (si.block_end & nan)),
            ]
            with m.If(arrive):
                m.d.sync += [ring_s[0].eq(s_new), ring_f[0].eq(f_new)]
                m.d.sync += [ring_s[n].eq(ring_s[n - 1]) for n in range(1, D)]
                m.d.sync += [ring_f[n].eq(ring_f[n - 1]) for n in range(1, D)]

            ev = Signal(name=f"ev{c}")
            m.d.comb += ev.eq(arrive & si.block_end)
            if acc.mode == "fp32":
                ev, last, reg_new, spec = _accumulate_fp32(m, arr, c, lsb_exp, si, b_scale,
                                                           s_new, f_new, ev, pg)
            else:
                s_sc = scale_block_sum(m, s_new, sig, f"s_scaled{c}")
                v, ev, tile_first, last, spec = block_to_grid(
                    m, acc, s_sc, grid_shift_from_sum(m, acc, len(s_sc), t, off),
                    [ev, si.tile_first, si.last, f_new], pg)

                # ring of accumulators, advanced once per finished block
                ring_a = [Signal(signed(acc.width), name=f"ra{c}_{n}") for n in range(D)]
                reg_new = accumulate(m, acc, Mux(tile_first, 0, ring_a[-1]), v)
                with m.If(ev):
                    m.d.sync += [ring_a[0].eq(reg_new)]
                    m.d.sync += [ring_a[n].eq(ring_a[n - 1]) for n in range(1, D)]
            emit = Signal(name=f"emit{c}")
            m.d.comb += emit.eq(ev & last)
            # result register, then the de-skew: column c waits for the last column
            emits.append(tuple(delay(s_, C - c, f"dsk{c}_{n}")
                               for n, s_ in enumerate((emit, reg_new, spec))))

        m.d.comb += [outq.i.valid.eq(emits[-1][0]),
                     outq.i.payload.eq(Cat(Cat(*(e[1] for e in emits)),
                                           Cat(*(e[2] for e in emits))))]
        return m


def _product_flags(m, arr, mul, pm, name):
    """A PE's product flags, beside its product (``pm`` registers): ``fixed``, the
    product is not a number (NaN/Inf element code); ``fp32``, its IEEE class (NaN, +Inf,
    -Inf: bits 0, 1, 2, from :func:`~mxhw.systolic.fp32acc.product_class`)."""
    if arr.acc.mode != "fp32":
        return mul.nonfinite
    cls = product_class(m, operand_element(arr.fmt_a), Value.cast(mul.a),
                        operand_element(arr.fmt_b), Value.cast(mul.b))
    return Cat(*(stage(m, x, pm >= 1, f"{name}{n}") for n, x in enumerate(cls)))


def _accumulate_fp32(m, arr, c, lsb_exp, si, b_scale, s_new, flags, ev, pg):
    """Column ``c``'s block end with ``fp32`` accumulation (golden's ``fp32`` mode): on
    ``ev`` the finished exact block sum ``s_new`` becomes ``S * 2**E`` rounded once to
    float32 (RNE, overflow to Inf; ``flags``: the block's NaN, +Inf, -Inf, NaN scales
    included, give the IEEE value of its products' sum instead), and is added (float32,
    RNE) to the row's accumulator, which starts at +0 at the tile's first block.

    ``pg`` (0..3) register stages: 1 captures the block sum, its exponent and flags; 2 the
    block's float32 value; 3 also cuts the conversion after its leading-one detection
    (:func:`~mxhw.systolic.fp32acc.int_to_f32`'s ``cut``). Returns ``(ev, last,
    reg_new, special)``: the block end and the tile's last pass after the stages, the
    accumulator's new value (float32 bits) and whether it is NaN.
    """
    fa, fb, D = arr.fmt_a, arr.fmt_b, arr.depth
    # E: the weight of S's LSB (products' LSB at 2**lsb_exp), from the scale codes
    off = lsb_exp - fa.scale.bias - fb.scale.bias
    e_hi = (1 << fa.scale.bits) + (1 << fb.scale.bits) + max(off, 0)
    e = Signal(range(min(off, 0), e_hi), name=f"e{c}")
    m.d.comb += e.eq(si.a_scale + b_scale + off)
    s_b, e_b, flags, ev, tile_first, last = (
        stage(m, x, pg >= 1, f"blk{c}")
        for x in (s_new, e, flags, ev, si.tile_first, si.last))

    def cut(*sigs):
        return tuple(stage(m, x, pg >= 3, f"cut{c}") for x in sigs)

    fin = int_to_f32(m, s_b, e_b, f"cv{c}", cut=cut)
    flags, ev, tile_first, last = (stage(m, x, pg >= 3, f"cut{c}")
                                   for x in (flags, ev, tile_first, last))
    bn, bp, bq = flags[0], flags[1], flags[2]
    blk = Signal(32, name=f"f32blk{c}")
    m.d.comb += blk.eq(Mux(bn | (bp & bq), F32_NAN,
                           Mux(bp, F32_INF, Mux(bq, F32_INF | 1 << 31, fin))))
    blk, ev, tile_first, last = (stage(m, x, pg >= 2, f"f32{c}")
                                 for x in (blk, ev, tile_first, last))

    # ring of float32 accumulators, advanced once per finished block
    ring_a = [Signal(32, name=f"ra{c}_{n}") for n in range(D)]
    reg_new = f32_add(m, Mux(tile_first, 0, ring_a[-1]), blk, f"acc{c}")
    with m.If(ev):
        m.d.sync += [ring_a[0].eq(reg_new)]
        m.d.sync += [ring_a[n].eq(ring_a[n - 1]) for n in range(1, D)]
    spec = Signal(name=f"f32nan{c}")
    m.d.comb += spec.eq((reg_new[23:31] == 0xFF) & (reg_new[:23] != 0))
    return ev, last, reg_new, spec
