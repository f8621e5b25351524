"""MXDotProduct against golden.arith.block_dots: Hypothesis blocks (raw codes, extreme
codes, quantised data with zeros, subnormals, huge and tiny values, NaN), random
back-pressure, latency and throughput, constructor errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxhw import golden
from mxhw.golden import arith
from mxhw.golden.quantize import MXArray
from mxhw.pe import MXDotProduct
from mxhw.pe.dot import dot_levels
from mxhw.sim import run
from support.hyp import budget
from support.pe import mx_block, run_stream, waits


def golden_dot(fa, fb, k, a, b, sa, sb):
    """(S, E, special) of one block pair, from golden.arith.block_dots."""
    A = MXArray(mx_block(fa, k), (1, k), 1, np.array([a], dtype=np.int64),
                np.array([[sa]], dtype=np.int64))
    B = MXArray(mx_block(fb, k), (k, 1), 0, np.array(b, dtype=np.int64)[:, None],
                np.array([[sb]], dtype=np.int64))
    d = arith.block_dots(A, B)
    return int(d.S[0, 0, 0]), int(d.E[0, 0, 0]), bool(d.is_special[0, 0, 0])


def pack(dut, a, b, sa, sb):
    """Input payload constant for a block pair of codes."""
    layout = dut.i.payload.shape()
    fa, fb = dut.fmt_a.element, dut.fmt_b.element
    v = (sa << layout["scale_a"].offset) | (sb << layout["scale_b"].offset)
    for j, c in enumerate(a):
        v |= c << (layout["a"].offset + j * fa.bits)
    for j, c in enumerate(b):
        v |= c << (layout["b"].offset + j * fb.bits)
    return layout.from_bits(v)


def simulate(dut, blocks, idle=0, stall=0, p_idle=0.0, p_stall=0.0):
    out = run_stream(dut, [pack(dut, *blk) for blk in blocks], len(blocks), idle, stall,
                     p_idle, p_stall)
    return [(o.s, o.e, bool(o.special)) for o in out]


# ---- block strategies ------------------------------------------------------------------

SCALES = st.one_of(st.integers(0, 255), st.sampled_from([0, 1, 126, 127, 128, 253, 254, 255]))


@st.composite
def raw_block(draw, fa, fb, k):
    na, nb = golden.formats.get(fa).n_codes, golden.formats.get(fb).n_codes
    a = draw(st.lists(st.integers(0, na - 1), min_size=k, max_size=k))
    b = draw(st.lists(st.integers(0, nb - 1), min_size=k, max_size=k))
    return a, b, draw(SCALES), draw(SCALES)


@st.composite
def extreme_block(draw, fa, fb, k):
    """Every element at its format's largest or most negative value (sum-width corners)."""
    def ext(f):
        t = golden.formats.get(f).int_table
        return [int(np.argmax(t)), int(np.argmin(t))]
    ea, eb = ext(fa), ext(fb)
    same = draw(st.booleans())  # all products of one sign, or mixed
    a = [ea[draw(st.integers(0, 1))] for _ in range(k)] if not same else [ea[0]] * k
    b = [eb[draw(st.integers(0, 1))] for _ in range(k)] if not same else [eb[0]] * k
    return a, b, draw(st.integers(0, 254)), draw(st.integers(0, 254))


def values(k):
    """k float values: zeros, subnormal-range and saturating magnitudes, mixed signs, NaN."""
    elem = st.one_of(st.just(0.0), st.floats(-1, 1, allow_nan=False),
                     st.sampled_from([1.0, -1.0, 0.5, -0.75, 1.75, 2.0**-9, -(2.0**-16)]))
    return st.tuples(st.lists(elem, min_size=k, max_size=k), st.integers(-150, 140),
                     st.booleans()).map(lambda t: _values(*t))


def _values(xs, e, nan):
    x = np.ldexp(np.array(xs, dtype=np.float64), e)
    if nan:
        x[len(x) // 2] = np.nan
    return x


@st.composite
def quantised_block(draw, fa, fb, k):
    x = draw(values(k))
    y = draw(values(k))
    A = golden.quantize(x[None, :], mx_block(fa, k), axis=1)
    B = golden.quantize(y[:, None], mx_block(fb, k), axis=0)
    return ([int(c) for c in A.elements[0]], [int(c) for c in B.elements[:, 0]],
            int(A.scales[0, 0]), int(B.scales[0, 0]))


def blocks(fa, fb, k):
    return st.lists(st.one_of(raw_block(fa, fb, k), extreme_block(fa, fb, k),
                              quantised_block(fa, fb, k)), min_size=1, max_size=12)


CONFIGS = [
    ("fp8_e4m3", "fp8_e4m3", 32, None),
    ("fp4_e2m1", "int8", 32, 6),
    ("fp8_e5m2", "fp6_e2m3", 16, 1),
    ("fp6_e3m2", "fp8_e5m2", 8, 3),
    ("int8", "int8", 2, 2),
    ("int8", "int8", 32, None),     # 8 x 8 products through lib.dsp's registered product
    ("int8", "int8", 4, 4),         # (registers after levels 1 and 2: stage ends 1..4)
    ("fp6_e2m3", "fp4_e2m1", 1, 1),
]


@pytest.mark.parametrize("fa, fb, k, pipeline", CONFIGS)
@budget(6)
@given(data=st.data(), idle=waits(), stall=waits())
def test_against_golden(fa, fb, k, pipeline, data, idle, stall):
    dut = MXDotProduct(mx_block(fa, k), mx_block(fb, k), pipeline=pipeline)
    blks = data.draw(blocks(fa, fb, k))
    got = simulate(dut, blks, idle, stall, 0.5, 0.5)
    assert got == [golden_dot(fa, fb, k, *blk) for blk in blks]


def test_special_cases():
    fa, fb, k = "fp8_e5m2", "fp8_e4m3", 4
    ga, gb = golden.formats.get(fa), golden.formats.get(fb)
    one_a, one_b = int(ga.encode(1.0)), int(gb.encode(1.0))
    blks = [
        ([one_a] * k, [one_b] * k, 127, 127),                      # 4 * 1.0
        ([one_a] * k, [one_b] * k, 255, 127),                      # NaN scale A
        ([one_a] * k, [one_b] * k, 127, 255),                      # NaN scale B
        ([ga.inf_code] + [one_a] * 3, [one_b] * k, 127, 127),      # Inf element
        ([one_a] * k, [gb.nan_code] + [one_b] * 3, 0, 254),        # NaN element
        ([0] * k, [0] * k, 0, 0),                                  # zeros, smallest scales
    ]
    got = simulate(MXDotProduct(mx_block(fa, k), mx_block(fb, k)), blks)
    exp = [golden_dot(fa, fb, k, *blk) for blk in blks]
    assert got == exp
    assert [g[2] for g in got] == [False, True, True, True, True, False]
    assert exp[0][0] * 2.0 ** exp[0][1] == 4.0


@pytest.mark.parametrize("k, pipeline", [(32, 1), (32, 2), (32, 8), (4, 5), (1, 3)])
def test_latency_and_throughput(k, pipeline):
    f = mx_block("fp4_e2m1", k)
    dut = MXDotProduct(f, f, pipeline=pipeline)
    assert dut.latency == pipeline
    n = 5
    blks = [([2] * k, [2 + j] * k, 127, 127) for j in range(n)]
    valid_at = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for cycle in range(n + pipeline + 3):
            if cycle < n:
                ctx.set(dut.i.payload, pack(dut, *blks[cycle]))
            else:
                ctx.set(dut.i.valid, 0)
            *_, ready, valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid,
                                                                dut.o.payload)
            if cycle < n:
                assert ready
            if valid:
                valid_at.append((cycle, (payload.s, payload.e, bool(payload.special))))

    run(dut, tb)
    # the block sent at the edge of cycle c is valid at the edge of cycle c + latency
    assert [c for c, _ in valid_at] == list(range(pipeline, pipeline + n))
    assert [v for _, v in valid_at] == [golden_dot("fp4_e2m1", "fp4_e2m1", k, *b) for b in blks]


@pytest.mark.parametrize("k", [1, 4, 32])
def test_combinational(k):
    """``pipeline=0``: the result, ``o.valid`` and ``i.ready`` follow the inputs at once."""
    f = mx_block("fp8_e4m3", k)
    dut = MXDotProduct(f, f, pipeline=0)
    assert dut.latency == 0
    blks = [([0x38] * k, [0x40 + j] * k, 127 - j, 127) for j in range(3)] + \
        [([0x7F] * k, [0x38] * k, 127, 127)]                           # NaN element

    async def tb(ctx):
        for n, blk in enumerate(blks):
            ready = n % 2
            ctx.set(dut.i.payload, pack(dut, *blk))
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.o.ready, ready)
            assert ctx.get(dut.o.valid) == 1 and ctx.get(dut.i.ready) == ready
            o = ctx.get(dut.o.payload)
            assert (o.s, o.e, bool(o.special)) == golden_dot("fp8_e4m3", "fp8_e4m3", k, *blk)
        ctx.set(dut.i.valid, 0)
        assert ctx.get(dut.o.valid) == 0

    run(dut, tb, clock=None)


def test_interface():
    dut = MXDotProduct("mxfp8_e4m3", "mxfp4")      # a golden alias (mxfp4_e2m1)
    assert dut.fmt_b is golden.formats.get("mxfp4_e2m1")
    # default: a register after every level (decode, products, shift in two levels (a
    # shift amount of 5 bits), 5 adder-tree levels)
    assert dut.latency == 9 and dut.k == 32
    assert dut.lsb_exp == -9 - 1
    assert dut.stage_ends == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert MXDotProduct("mxfp4", "mxfp4", pipeline=2).stage_ends == [4, 8]
    assert MXDotProduct("mxfp4", "mxfp4", pipeline=3).stage_ends == [3, 6, 8]
    one = mx_block("int8", 1)
    assert MXDotProduct(one, one).latency == 3 and MXDotProduct(one, one, 0).latency == 0
    o = dut.o.payload.shape()
    # E4M3 max 448 = 7 * 2**6 at 2**-9: 7 * 2**15; E2M1 max 6 = 12 at 2**-1; 32 products
    assert o["s"].shape == golden_width(32 * 7 * 2**15 * 12)
    assert o["e"].shape.signed and dut.i.payload.shape()["a"].shape.length == 32


def golden_width(m):
    from amaranth.hdl import signed
    return signed(m.bit_length() + 1)


def test_init_wrong_k():
    f4, f8 = mx_block("fp4_e2m1", 4), mx_block("fp4_e2m1", 8)
    with pytest.raises(ValueError, match=r"^fmt_a and fmt_b must have the same block size, "
                                         r"not 4 \(test_fp4_e2m1_4\) and 8 "):
        MXDotProduct(f4, f8)
    for k in (3, 64):
        with pytest.raises(ValueError, match=rf"^fmt_b must be a block format with one "
                                             rf"element format, .*not 'test_fp4_e2m1_{k}'$"):
            MXDotProduct(f4, mx_block("fp4_e2m1", k))
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'k'"):
        MXDotProduct("mxfp4", "mxfp4", k=32)


def test_init_wrong_pipeline():
    with pytest.raises(TypeError, match=r"^pipeline must be an integer, not '2'$"):
        MXDotProduct("mxfp4", "mxfp4", pipeline="2")
    with pytest.raises(ValueError, match=r"^pipeline must be in \[0, 8\], not 9$"):
        MXDotProduct("mxfp4", "mxfp4", pipeline=9)
    f = mx_block("fp4_e2m1", 4)
    with pytest.raises(ValueError, match=r"^pipeline must be in \[0, 5\], not -1$"):
        MXDotProduct(f, f, pipeline=-1)


def test_init_wrong_fmt():
    with pytest.raises(ValueError, match=r"^fmt_b must be a block format name, one of "
                                         r".*; not 'mxfp5'$"):
        MXDotProduct("mxfp4", "mxfp5")
    with pytest.raises(TypeError, match=r"^fmt_b must be a block format \(a name or a "
                                        r"BlockFormat\), not ElementFormat\('fp4_e2m1'\)$"):
        MXDotProduct("mxint8", "fp4_e2m1")
    with pytest.raises(ValueError, match=r"^fmt_a must be a block format with one element "
                                         r"format, .*not 'mxsf'$"):
        MXDotProduct("mxsf", "mxfp4")


def test_init_wrong_dsp():
    with pytest.raises(ValueError, match=r"^dsp must be one of 'fabric', 'ecp5', not 'dsp48'$"):
        MXDotProduct("mxint8", "mxint8", dsp="dsp48")
    # the DSP's registers are the stages after levels 1 and 2: pipeline 2 ends at 4 and 8
    with pytest.raises(ValueError, match=r"^dsp='ecp5' needs registers after levels 1 and 2 "
                                         r"\(the DSP's own\), which pipeline=2 does not "
                                         r"place \(stage ends \[4, 8\]\)$"):
        MXDotProduct("mxint8", "mxint8", pipeline=2, dsp="ecp5")
    # LUT products (FP formats): nothing for a DSP to do, any pipeline
    assert MXDotProduct("mxfp4", "mxfp4", pipeline=2, dsp="ecp5").dsp == "ecp5"


def test_dsp_instances():
    """``dsp="ecp5"``, or ``None`` on an ECP5 platform: one MULT18X18D per element product
    (MXINT8); ``"fabric"`` and other platforms: none (``*`` in Amaranth)."""
    from types import SimpleNamespace

    from amaranth.hdl import Fragment, Instance

    def mults(dut, platform=None):
        frag = Fragment.get(dut, platform)
        found = []

        def walk(f):
            for sub, _, _ in f.subfragments:
                if isinstance(sub, Instance) and sub.type == "MULT18X18D":
                    found.append(sub)
                else:
                    walk(sub)
        walk(frag)
        return found
    k = 4
    f = mx_block("int8", k)
    assert len(mults(MXDotProduct(f, f, dsp="ecp5"))) == k
    assert len(mults(MXDotProduct(f, f), SimpleNamespace(family="ecp5"))) == k
    assert mults(MXDotProduct(f, f, dsp="fabric"), SimpleNamespace(family="ecp5")) == []
    assert mults(MXDotProduct(f, f), SimpleNamespace(family="xc7")) == []
    assert mults(MXDotProduct(f, f)) == []
    assert mults(MXDotProduct(f, f, pipeline=2), SimpleNamespace(family="ecp5")) == []
    g = mx_block("fp8_e4m3", k)
    assert mults(MXDotProduct(g, g, dsp="ecp5")) == []


def test_ppa_dot_configs_at_the_default_pipeline():
    """The PPA suite's dot configurations (and the targets of issue #33) measure the unit
    at its default pipeline, the depth their parameters state."""
    from mxhw.bench.ppa import configs
    assert set(configs.DOT_TARGETS) <= {n for n, c in configs.CONFIGS.items()
                                        if c.block == "dot"}
    for name, cfg in configs.CONFIGS.items():
        if cfg.block == "dot":
            dut = cfg.make()
            depth = configs.DOT_PIPELINE[cfg.params["format"]]
            assert dut.latency == cfg.params["pipeline"] == depth == dot_levels(
                cfg.params["format"], cfg.params["format"]), name
            assert dut.stage_ends == list(range(1, depth + 1)), name

