"""BitSerialPE and WeightMapper against golden.bitserial (pe_dot, weight_ints)."""

import pytest
from hypothesis import given, strategies as st

from mxhw import sim
from mxhw.golden import bitserial as g
from mxhw.pe import BitSerialPE, WeightMapper
from support.hyp import budget
from support.pe import first_to_result, ops_beats, run_stream, waits


def run_pe(dut, ops, idle=0, stall=0, p_idle=0.3, p_stall=0.4):
    """Send operations (lists of (acts, weights, prec) beats); return the PE's results."""
    return run_stream(dut, ops_beats(ops, ("a", "w", "prec")), len(ops), idle, stall,
                      p_idle, p_stall)


def expected(dut, ops):
    out = []
    for op in ops:
        prec = op[0][2]   # latched at the operation's first beat
        a = [x for b in op for x in b[0]]
        w = [x for b in op for x in b[1]]
        out.append(g.pe_dot(a, w, prec, dut.acc_width))
    return out


@st.composite
def operations(draw, lanes, max_wbits, act_width=8, extremes=False):
    n_ops = draw(st.integers(1, 5))
    ops = []
    alo, ahi = -(1 << (act_width - 1)), (1 << (act_width - 1)) - 1
    for _ in range(n_ops):
        prec = draw(st.integers(2, max_wbits))
        wlo, whi = -(1 << (prec - 1)), (1 << (prec - 1)) - 1
        a_st = st.sampled_from([alo, ahi, 0, -1]) if extremes else st.integers(alo, ahi)
        w_st = st.sampled_from([wlo, whi, 0, -1]) if extremes else st.integers(wlo, whi)
        op = []
        for j in range(draw(st.integers(1, 4))):
            # later beats carry a random prec: it must be ignored
            p = prec if j == 0 else draw(st.integers(0, max_wbits))
            op.append(([draw(a_st) for _ in range(lanes)], [draw(w_st) for _ in range(lanes)],
                       p))
        ops.append(op)
    return ops


@pytest.mark.parametrize("msb_first", [True, False])
@pytest.mark.parametrize("lanes", [1, 4])
@budget(15)
@given(data=st.data(), idle=waits(), stall=waits())
def test_pe_matches_golden(msb_first, lanes, data, idle, stall):
    dut = BitSerialPE(act_width=8, max_wbits=8, lanes=lanes, msb_first=msb_first)
    ops = data.draw(operations(lanes, 8))
    assert run_pe(dut, ops, idle, stall) == expected(dut, ops)


@pytest.mark.parametrize("msb_first", [True, False])
@budget(10)
@given(data=st.data(), idle=waits(), stall=waits())
def test_pe_negative_extremes(msb_first, data, idle, stall):
    # -2**(n-1) weights and -2**(act_width-1) activations, at every precision
    dut = BitSerialPE(act_width=6, max_wbits=5, lanes=3, msb_first=msb_first)
    ops = data.draw(operations(3, 5, act_width=6, extremes=True))
    assert run_pe(dut, ops, idle, stall) == expected(dut, ops)


@pytest.mark.parametrize("msb_first", [True, False])
def test_pe_precision_switching(msb_first):
    """Consecutive operations at 3, 4, 8, 2, 8, 3 bits, back to back, all extremes."""
    dut = BitSerialPE(act_width=8, max_wbits=8, lanes=2, msb_first=msb_first)
    ops = []
    for prec in (3, 4, 8, 2, 8, 3):
        lo = -(1 << (prec - 1))
        ops.append([([-128, 127], [lo, lo], prec), ([-128, -128], [lo, -lo - 1], prec)])
    assert run_pe(dut, ops, p_idle=0.0, p_stall=0.0) == expected(dut, ops)


@pytest.mark.parametrize("prec", [3, 4, 8])
def test_pe_throughput_one_beat_per_prec_cycles(prec):
    """Without gaps or stalls the result of a B-beat operation is taken B * prec + 2 clock
    edges after its first beat's transfer (the documented timing: one beat per prec
    cycles, the result register loaded B * prec + 1 edges after the first transfer)."""
    dut = BitSerialPE(act_width=8, max_wbits=8, lanes=1)
    B = 5
    beats = [{"a": [3], "w": [1], "prec": prec, "last": int(j == B - 1)} for j in range(B)]
    cycles, out = first_to_result(dut, beats)
    assert out == g.pe_dot([3] * B, [1] * B, prec, dut.acc_width)
    assert cycles == B * prec + 2


def test_pe_acc_wraps_like_golden():
    dut = BitSerialPE(act_width=8, max_wbits=8, lanes=1, acc_width=16)
    ops = [[([-128], [-128], 8)] * 4]
    assert run_pe(dut, ops) == expected(dut, ops) == [g.wrap(4 * 16384, 16)]


def test_pe_init():
    dut = BitSerialPE()
    assert (dut.act_width, dut.max_wbits, dut.lanes, dut.msb_first) == (8, 8, 1, True)
    assert dut.acc_width == 8 + 8 + 0 + 8
    assert BitSerialPE(lanes=5).acc_width == 8 + 8 + 3 + 8


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"act_width": "8"}, TypeError, "act_width must be an integer, not '8'"),
    ({"act_width": 1}, ValueError, "act_width must be in [2, 32], not 1"),
    ({"max_wbits": 1}, ValueError, "max_wbits must be in [2, 16], not 1"),
    ({"max_wbits": 8.0}, TypeError, "max_wbits must be an integer, not 8.0"),
    ({"lanes": 0}, ValueError, "lanes must be in [1, 256], not 0"),
    ({"msb_first": 1}, TypeError, "msb_first must be True or False, not 1"),
    ({"acc_width": True}, TypeError, "acc_width must be an integer, not True"),
    ({"acc_width": 15}, ValueError,
     "acc_width must be >= act_width + max_wbits + clog2(lanes) = 16 (one exact beat), "
     "not 15"),
])
def test_pe_init_wrong(kwargs, exc, msg):
    with pytest.raises(exc) as e:
        BitSerialPE(**kwargs)
    assert str(e.value) == msg


# ---- the weight mapper ----------------------------------------------------------------------

ALL_TYPES = tuple(g.WEIGHT_TYPES)


def test_mapper_every_code_of_every_type():
    """Exhaustive: every code of every type maps to golden's integer and precision."""
    dut = WeightMapper(ALL_TYPES, lanes=2)

    async def tb(ctx):
        for i, name in enumerate(ALL_TYPES):
            t = g.weight_type(name)
            ctx.set(dut.sel, i)
            for c in range(0, 1 << t.code_bits, 2):
                ctx.set(dut.code[0], c)
                ctx.set(dut.code[1], c + 1)
                want = g.weight_ints(name, [c, c + 1])
                assert [ctx.get(dut.w[0]), ctx.get(dut.w[1])] == list(want), (name, c)
                assert ctx.get(dut.bits) == t.bits
    sim.run(dut, tb, clock=None)


def test_mapper_init():
    m = WeightMapper(["bitmod_fp3_er_pos", "int8"], lanes=3)
    assert m.code_bits == 8 and m.out_width == 8 and m.lanes == 3
    assert WeightMapper(["bitmod_fp4_ea_pos"]).out_width == 6


@pytest.mark.parametrize("args,kwargs,exc,msg", [
    (("int4",), {}, TypeError, "types must be a sequence of weight type names, not 'int4'"),
    ((5,), {}, TypeError, "types must be a sequence of weight type names, not 5"),
    (((),), {}, ValueError, "types must name at least one weight type"),
    ((("int9",),), {}, ValueError, "unknown weight type 'int9'; known: " +
     ", ".join(g.WEIGHT_TYPES)),
    ((("int4",),), {"lanes": 0}, ValueError, "lanes must be in [1, 256], not 0"),
    ((("int4",),), {"out_width": 3}, ValueError,
     "out_width must be >= 4 (the widest type's bits), not 3"),
])
def test_mapper_init_wrong(args, kwargs, exc, msg):
    with pytest.raises(exc) as e:
        WeightMapper(*args, **kwargs)
    assert str(e.value) == msg
