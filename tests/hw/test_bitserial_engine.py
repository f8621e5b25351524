"""BitSerialGEMV against golden.bitserial.gemv (BitMoD weights with integer group scales,
INT8 activations)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from mxhw.golden import bitserial as g
from mxhw.pe.bitserial_engine import BitSerialGEMV, DEFAULT_TYPES
from support.hyp import budget
from support.pe import run_stream, waits


def run_gemv(dut, jobs, idle=0, stall=0, p_idle=0.2, p_stall=0.3, backend=None):
    """Run GEMVs ``[(q, x), ...]`` back to back on one engine; returns y per job."""
    beats, counts = [], []
    for q, x in jobs:
        beats += dut.beats(q, x)
        counts.append(-(-q.codes.shape[0] // dut.pes))
    got = run_stream(dut, beats, sum(counts), idle, stall, p_idle, p_stall, backend=backend,
                     timeout=100_000)
    out = []
    for (q, _), n in zip(jobs, counts):
        ys = [int(v) for beat in got[:n] for v in beat]
        got = got[n:]
        out.append(ys[:q.codes.shape[0]])
    return out


def make_job(rng, family, rows, cols, group, special=False):
    w = rng.standard_normal((rows, cols)) * rng.uniform(1e-3, 1e3)
    x = rng.integers(-128, 128, cols)
    return job(family, w, x, group, special)


def job(family, w, x, group, special=False):
    """``(q, x)``: weights ``w`` quantised to ``family`` in groups of ``group``; with
    ``special`` an all-zero row, an all-negative group and INT8's negative extreme."""
    w, x = np.array(w, dtype=np.float64), np.array(x, dtype=np.int64)
    if special:
        w[0] = 0.0                                   # an all-zero row
        w[-1, :group] = -np.abs(w[-1, :group])       # an all-negative group
    q = g.quantize_int_scale(w, family, group=group)
    if special:
        x[:4] = -128                                 # INT8 negative extreme
    return q, x


FAMILIES = ["bitmod_fp4", "bitmod_fp3", "int3", "int4", "int8"]


@pytest.mark.parametrize("msb_first", [True, False])
@budget(6)
@given(family=st.sampled_from(FAMILIES), lanes=st.sampled_from([1, 2, 4]),
       w=st.integers(1, 7).flatmap(lambda rows: arrays(
           np.float64, (rows, 16), elements=st.floats(-1e3, 1e3, allow_subnormal=False)))
       .filter(lambda w: np.abs(w).max() > 0),
       x=arrays(np.int64, 16, elements=st.integers(-128, 127)), special=st.booleans(),
       idle=waits(), stall=waits())
def test_gemv_matches_golden(msb_first, family, lanes, w, x, special, idle, stall):
    dut = BitSerialGEMV(pes=3, lanes=lanes, group=8, cols=16, msb_first=msb_first)
    q, x = job(family, w, x, 8, special)
    assert run_gemv(dut, [(q, x)], idle, stall) == [g.gemv(q, x)]


def test_gemv_precision_switching():
    """One engine, GEMVs at different precisions back to back (8, 3, FP4, FP3, 4 bits):
    the run-time precision changes between groups without re-synthesis."""
    rng = np.random.default_rng(7)
    dut = BitSerialGEMV(pes=2, lanes=4, group=16, cols=32)
    jobs = [make_job(rng, f, 3, 32, 16, special=True)
            for f in ["int8", "int3", "bitmod_fp4", "bitmod_fp3", "int4"]]
    assert run_gemv(dut, jobs, 3, 3) == [g.gemv(q, x) for q, x in jobs]


def _weights_with_extremes(family, rows, cols, group):
    """Weights hitting every code of every type of the family (ints incl. -2**(n-1))."""
    cands = g.family(family)
    codes = np.zeros((rows, cols), np.int64)
    types = np.zeros((rows, cols // group), np.int64)
    for r in range(rows):
        for gi in range(cols // group):
            t = (r + gi) % len(cands)
            types[r, gi] = t
            n = 1 << cands[t].code_bits
            codes[r, gi * group:(gi + 1) * group] = [(r * 7 + k) % n for k in range(group)]
    scale = np.full((rows, cols // group), 255, np.int64)
    return g.BitModInt(family, group, 8, codes, types, scale, np.zeros(rows, np.int64))


@pytest.mark.parametrize("family", ["bitmod_fp4", "bitmod_fp3", "int8"])
def test_gemv_every_code_and_extremes(family):
    dut = BitSerialGEMV(pes=4, lanes=4, group=16, cols=32)
    q = _weights_with_extremes(family, 8, 32, 16)
    for x in (np.full(32, -128), np.full(32, 127)):
        assert run_gemv(dut, [(q, x)], p_idle=0.0, p_stall=0.0) == [g.gemv(q, x)]


@pytest.mark.parametrize("family", ["bitmod_fp4", "bitmod_fp3"])
def test_gemv_end_to_end_small(family):
    """BitMoD 4-bit and 3-bit weights, group 128, 16 x 256, INT8 activations."""
    rng = np.random.default_rng(11)
    dut = BitSerialGEMV(pes=8, lanes=8, group=128, cols=256, types=g.FAMILIES[family])
    q, x = make_job(rng, family, 16, 256, 128)
    assert run_gemv(dut, [(q, x)], 5, 5) == [g.gemv(q, x)]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bitmod_fp4", "bitmod_fp3"])
def test_gemv_end_to_end_256x512(family):
    """The issue's size: 256 x 512 weights, BitMoD 4-bit and 3-bit, group 128 (pysim: about
    1 minute each on an idle 2-core machine, 4 minutes under load)."""
    rng = np.random.default_rng(12)
    dut = BitSerialGEMV(pes=16, lanes=8, group=128, cols=512, types=g.FAMILIES[family])
    q, x = make_job(rng, family, 256, 512, 128)
    assert run_gemv(dut, [(q, x)], 6, 6) == [g.gemv(q, x)]


def test_exports():
    from mxhw.pe.bitserial import BitSerialPE
    from mxhw.dequant.bitserial import BitSerialDequant
    import mxhw.pe
    import mxhw.dequant
    assert mxhw.pe.BitSerialPE is BitSerialPE and mxhw.pe.BitSerialGEMV is BitSerialGEMV
    assert mxhw.dequant.BitSerialDequant is BitSerialDequant


def test_init():
    d = BitSerialGEMV()
    assert (d.pes, d.lanes, d.group, d.cols, d.act_width, d.scale_width) == \
        (4, 4, 128, 256, 8, 8)
    assert d.types == DEFAULT_TYPES and d.wbits == 8 and d.code_bits == 8
    assert d.acc_width == 8 + 8 + 7 + 8 + 1
    d = BitSerialGEMV(types=["bitmod_fp3_er_pos"], group=4, lanes=4, cols=4)
    assert d.wbits == 4 and d.code_bits == 3


@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"pes": 0}, ValueError, "pes must be in [1, 256], not 0"),
    ({"lanes": "4"}, TypeError, "lanes must be an integer, not '4'"),
    ({"group": 0}, ValueError, "group must be >= 1, not 0"),
    ({"cols": 2.0}, TypeError, "cols must be an integer, not 2.0"),
    ({"act_width": 1}, ValueError, "act_width must be in [2, 32], not 1"),
    ({"scale_width": 0}, ValueError, "scale_width must be in [1, 32], not 0"),
    ({"group": 6, "lanes": 4}, ValueError, "group must be a multiple of lanes (4), not 6"),
    ({"cols": 200}, ValueError, "cols must be a multiple of group (128), not 200"),
    ({"msb_first": None}, TypeError, "msb_first must be True or False, not None"),
    ({"types": ["fp5"]}, ValueError,
     "unknown weight type 'fp5'; known: " + ", ".join(g.WEIGHT_TYPES)),
])
def test_init_wrong(kwargs, exc, msg):
    with pytest.raises(exc) as e:
        BitSerialGEMV(**kwargs)
    assert str(e.value) == msg


def test_beats_wrong():
    dut = BitSerialGEMV(pes=2, lanes=4, group=16, cols=32, types=["int4"])
    q = g.quantize_int_scale(np.ones((2, 64)), "int4", group=16)
    with pytest.raises(ValueError, match="q is 2 x 64 in groups of 16; this engine takes 32 "
                                         "columns in groups of 16"):
        dut.beats(q, np.zeros(64))
    q = g.quantize_int_scale(np.ones((2, 32)), "int8", group=16)
    with pytest.raises(ValueError, match=r"this engine does not map the types \['int8'\]"):
        dut.beats(q, np.zeros(32))
