"""The parts of the SoC's layer path on their own: the instruction encoding
(mxhw.soc.isa), the activation path (OutPath against golden.quantize), the sequencer's
and the configuration's parameter checks."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.sim import run
from mxhw.soc import isa
from mxhw.soc.ascale import pack_entries
from mxhw.soc.gemm import GemmUnit
from mxhw.soc.outpath import OutPath
from mxhw.soc.program import ProgramSequencer
from mxhw.soc.top import SoCConfig, config_overrides
from support.hyp import budget

# ---- the encoding ----------------------------------------------------------------------

INSTRS = st.builds(isa.Instr, **{n: st.integers(0, (1 << w) - 1)
                                 for n, (_, w) in isa.FIELDS.items()})


@budget(50)
@given(ins=INSTRS)
def test_encode_decode_round_trip(ins):
    words = isa.encode(ins)
    assert len(words) == isa.WORDS and all(0 <= w < 1 << 32 for w in words)
    assert isa.decode(words) == ins


def test_fields_do_not_overlap_and_fill_two_words():
    bits = [b for lo, w in isa.FIELDS.values() for b in range(lo, lo + w)]
    assert len(bits) == len(set(bits)) and max(bits) < 32 * isa.WORDS
    # word 1 of LINEAR holds m_tiles, dst, b, n_tiles from its low byte up
    w = isa.encode(isa.Instr(op=1, m_tiles=1, dst=2, b=3, n_tiles=4))
    assert w == [1, 0x04030201]


@pytest.mark.parametrize("field,value", [("op", 16), ("k_blocks", -1), ("src", 256),
                                         ("n_tiles", True), ("dst", 1.0)])
def test_encode_refuses_values_outside_a_field(field, value):
    with pytest.raises(ValueError, match=f"field {field} = "):
        isa.encode(isa.Instr(**{field: value}))


def test_assemble_appends_end():
    one = isa.Instr(op=1, k_blocks=1, m_tiles=1, n_tiles=1)
    assert isa.assemble([one]) == isa.encode(one) + [0, 0]
    assert isa.assemble([]) == [0, 0]
    assert isa.assemble([one, isa.Instr()]) == isa.encode(one) + [0, 0]


CAPS = {"rows": 2, "cols": 8, "max_k": 64, "a_tiles": 8, "b_tiles": 8, "c_tiles": 4,
        "out_fmt": 1}


@pytest.mark.parametrize("fields,err", [
    (dict(op=0), "none"),
    (dict(op=2), "opcode"),
    (dict(op=1, out_fmt=3, k_blocks=0), "format"),          # format before shape
    (dict(op=1, k_blocks=0, m_tiles=1, n_tiles=1), "shape"),
    (dict(op=1, k_blocks=3, m_tiles=1, n_tiles=1), "shape"),      # K = 96 > max_k
    (dict(op=1, k_blocks=1, m_tiles=0, n_tiles=1), "shape"),
    (dict(op=1, out_fmt=1, k_blocks=1, m_tiles=1, n_tiles=2, dst=1), "shape"),  # N = 16
    (dict(op=1, out_fmt=1, k_blocks=1, m_tiles=1, n_tiles=12, dst=1), "shape"),  # N > 64
    (dict(op=1, k_blocks=2, m_tiles=2, n_tiles=2), "none"),
    (dict(op=1, k_blocks=1, m_tiles=3, n_tiles=2), "region"),     # 6 C tiles > 4
    (dict(op=1, k_blocks=1, src=7, m_tiles=2, n_tiles=1), "region"),
    (dict(op=1, k_blocks=1, m_tiles=1, b=7, n_tiles=2), "region"),
    (dict(op=1, out_fmt=1, k_blocks=1, src=0, m_tiles=2, dst=1, n_tiles=4), "region"),
    (dict(op=1, out_fmt=1, k_blocks=1, src=0, m_tiles=2, dst=7, n_tiles=4), "region"),
    (dict(op=1, out_fmt=1, k_blocks=1, src=0, m_tiles=2, dst=2, n_tiles=4), "none"),
])
def test_check_spec(fields, err):
    assert isa.check(isa.Instr(**fields), CAPS) == err


# ---- the activation path ---------------------------------------------------------------

def run_outpath(dut, values):
    """Collect ``values`` (rows x 32 accumulator integers) column tile by column tile,
    start, and return (codes (rows x 32), A-scale entries (rows)) as emitted."""
    R, C, W = dut.rows, dut.cols, dut.acc_width
    E, SB = dut.ebits, dut.sbits
    got = {}

    async def tb(ctx):
        for s in range(32 // C):
            for i in range(R):
                word = 0
                for j in range(C):
                    word |= (int(values[i, s * C + j]) & ((1 << W) - 1)) << (j * W)
                ctx.set(dut.col_en, 1)
                ctx.set(dut.col_row, i)
                ctx.set(dut.col_slot, s)
                ctx.set(dut.col_data, word)
                await ctx.tick()
        ctx.set(dut.col_en, 0)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        codes, scales = {}, None
        for _ in range(R + dut.rq.latency + 40):
            if ctx.get(dut.w_en):
                codes[ctx.get(dut.w_k)] = ctx.get(dut.w_codes)
            if ctx.get(dut.s_en):
                scales = ctx.get(dut.s_codes)
            await ctx.tick()
        assert not ctx.get(dut.busy) and sorted(codes) == list(range(32))
        got["codes"] = np.array([[codes[k] >> (i * E) & ((1 << E) - 1) for k in range(32)]
                                 for i in range(R)])
        got["scales"] = np.array([scales >> (i * SB) & ((1 << SB) - 1) for i in range(R)])

    run(dut, tb)
    return got["codes"], got["scales"]


@pytest.mark.parametrize("fmt,rows,cols", [("mxfp8_e4m3", 2, 8), ("mxint8", 1, 16),
                                           ("mxfp4_e2m1", 3, 32), ("mxsf", 2, 8)])
@budget(3)
@given(data=st.data())
def test_outpath_equals_golden_quantize(fmt, rows, cols, data):
    """OutPath's codes and scales for drawn accumulator values (any magnitude, exact
    zeros, saturating extremes, small values beside large ones: MXSF's mode S) are
    golden.quantize's of the values ``v * 2**-frac`` (MXSF: its modes too, beside the
    scales in the A-scale entries)."""
    W, F = 24, 10
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    mag = data.draw(st.integers(1, W - 1))
    v = np.array(data.draw(st.lists(
        st.one_of(st.integers(-(1 << mag), 1 << mag), st.sampled_from([0, lo, hi]),
                  st.integers(-8, 8)),
        min_size=rows * 32, max_size=rows * 32))).reshape(rows, 32)
    v = np.clip(v, lo, hi)
    codes, scales = run_outpath(OutPath(rows, cols, fmt, W, F), v)
    want = golden.quantize(np.ldexp(v.astype(np.float64), -F), fmt, axis=1)
    entries = pack_entries(want.scales[:, 0],
                           None if want.modes is None else want.modes[:, 0], want.fmt)
    assert np.array_equal(codes, want.elements) and np.array_equal(scales, entries)


@pytest.mark.parametrize("kw,match", [
    (dict(rows=0), "rows"), (dict(cols=3), "cols"), (dict(cols=64), "cols"),
    (dict(acc_width=60), "acc_width"), (dict(fmt="nvfp4"), "fmt"),
])
def test_outpath_bad_parameters(kw, match):
    args = dict(rows=2, cols=8, fmt="mxfp8_e4m3", acc_width=32, acc_frac=16) | kw
    with pytest.raises((ValueError, TypeError), match=match):
        OutPath(**args)


@pytest.mark.parametrize("kw,match", [
    (dict(n_instr=3), "n_instr"), (dict(b_tiles=0), "b_tiles"), (dict(max_k=48), "max_k"),
    (dict(out_id=1, cols=3), "cols"), (dict(out_id=300), "out_id"),
])
def test_sequencer_bad_parameters(kw, match):
    args = dict(rows=2, cols=8, max_k=64, a_tiles=4, b_tiles=4, c_tiles=4, n_instr=8) | kw
    with pytest.raises((ValueError, TypeError), match=match):
        ProgramSequencer(**args)


# ---- configuration ---------------------------------------------------------------------

@pytest.mark.parametrize("kw,match", [
    (dict(b_tiles=3), "b_tiles"), (dict(c_tiles=0), "c_tiles"), (dict(b_tiles=512), "b_tiles"),
    (dict(prog_words=6), "prog_words"), (dict(prog_words=2048), "prog_words"),
    (dict(prog_words=-1), "prog_words"),
    (dict(out_fmt="mxfp8_e4m3"), "out_fmt must be fmt_a"),
    (dict(out_fmt="mxfp4", prog_words=0), "prog_words"),
    (dict(out_fmt="mxfp4", prog_words=8, cols=3), "cols dividing 32"),
    (dict(out_fmt="mxfp4", prog_words=8, acc_width=60), "acc_width"),
    (dict(out_fmt=4), "out_fmt"),
    (dict(dataflow="weight_stationary", prog_words=8), "prog_words applies"),
    (dict(dataflow="weight_stationary", b_tiles=2), "b_tiles applies"),
])
def test_config_refuses(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SoCConfig(**kw)


def test_config_overrides_take_the_new_fields():
    cfg = config_overrides(["prog_words=16", "b_tiles=0x10", "c_tiles=4", "out_fmt=mxfp4"])
    assert (cfg.prog_words, cfg.b_tiles, cfg.c_tiles, cfg.out_fmt) == \
        (16, 16, 4, "mxfp4_e2m1")
    assert cfg.features() >> 10 & 3 == 3 and SoCConfig().features() >> 10 & 3 == 0
    with pytest.raises(ValueError, match="out_fmt must be fmt_a"):
        config_overrides(["prog_words=16", "out_fmt=mxint8"])


@pytest.mark.parametrize("kw,match", [
    (dict(out_fmt="mxint8", prog_words=8), "out_fmt must be fmt_a"),
    (dict(out_fmt="mxfp4"), "prog_words"),
    (dict(prog_words=8, dataflow="weight_stationary", depth=2), "prog_words applies"),
    (dict(b_tiles=2, dataflow="weight_stationary", depth=2), "b_tiles"),
])
def test_gemm_unit_refuses(kw, match):
    args = dict(rows=2, cols=2, fmt_a="mxfp4", fmt_b="mxfp4", acc=SoCConfig().acc,
                max_k=32) | kw
    with pytest.raises((ValueError, TypeError), match=match):
        GemmUnit(**args)


def test_config_overrides_dependent_fields_follow():
    """A base with the activation path: ``fmt_a=`` takes the path along; the
    weight-stationary dataflow and ``rows=0`` drop the output-stationary unit's memories
    and sequencer; given explicitly, they are checked as given."""
    base = SoCConfig(rows=4, cols=4, fmt_a="mxfp8_e4m3", fmt_b="mxfp4", a_tiles=8,
                     b_tiles=16, c_tiles=16, prog_words=64, out_fmt="mxfp8_e4m3")
    assert config_overrides(["fmt_a=mxint8"], base).out_fmt == "mxint8"
    ws = config_overrides(["dataflow=weight_stationary"], base)
    assert (ws.a_tiles, ws.b_tiles, ws.c_tiles, ws.prog_words, ws.out_fmt) == (1, 1, 1, 0, "")
    assert config_overrides(["rows=0"], base).prog_words == 0
    with pytest.raises(ValueError, match="out_fmt must be fmt_a"):
        config_overrides(["fmt_a=mxint8", "out_fmt=mxfp8_e4m3"], base)
    with pytest.raises(ValueError, match="prog_words applies"):
        config_overrides(["dataflow=weight_stationary", "prog_words=64"], base)
