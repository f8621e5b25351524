"""golden.bitserial: the unified weight representation and the bit-serial arithmetic twins.

Expectations come from docs/FORMATS.md's BitMoD grids and from plain integer arithmetic."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays
from support.golden import tiled_arrays

from mxhw.golden import bitserial as g

# docs/FORMATS.md: FP4 base grid (E2M1 values), FP3 base grid, extra values per candidate
FP4_BASE = {0, 0.5, 1, 1.5, 2, 3, 4, 6}
FP3_BASE = {0, 1, 2, 4}
EXTRA = {"bitmod_fp4_er_pos": 5, "bitmod_fp4_er_neg": -5, "bitmod_fp4_ea_pos": 8,
         "bitmod_fp4_ea_neg": -8, "bitmod_fp3_er_pos": 3, "bitmod_fp3_er_neg": -3,
         "bitmod_fp3_ea_pos": 6, "bitmod_fp3_ea_neg": -6}


@pytest.mark.parametrize("name", list(EXTRA))
def test_bitmod_grids(name):
    t = g.weight_type(name)
    base = FP4_BASE if "fp4" in name else FP3_BASE
    expect = {v for b in base for v in (b, -b)} | {EXTRA[name]}
    assert set(t.values) == expect
    assert len(t.values) == 1 << t.code_bits
    # the -0 code carries the extra value
    assert t.values[1 << (t.code_bits - 1)] == EXTRA[name]
    # values are ints * 2**lsb_exp
    assert all(v == i * 2.0 ** t.lsb_exp for v, i in zip(t.values, t.ints))


def test_serial_precisions():
    assert [g.weight_type(n).bits for n in g.FAMILIES["bitmod_fp4"]] == [5, 5, 6, 5]
    assert [g.weight_type(n).bits for n in g.FAMILIES["bitmod_fp3"]] == [4, 4, 4, 4]
    assert g.family_bits("bitmod_fp4") == 6 and g.family_bits("bitmod_fp3") == 4
    for n in range(2, 9):
        assert g.weight_type(f"int{n}").bits == n == g.weight_type(f"mxint{n}").bits


@pytest.mark.parametrize("n", range(2, 9))
def test_int_types_are_twos_complement(n):
    for prefix in ("int", "mxint"):
        t = g.weight_type(f"{prefix}{n}")
        assert t.ints[1 << (n - 1)] == -(1 << (n - 1))   # most negative code decodes
        assert sorted(t.ints) == list(range(-(1 << (n - 1)), 1 << (n - 1)))


@pytest.mark.parametrize("name", list(EXTRA))
def test_terms_at_most_two(name):
    for w in g.weight_type(name).ints:
        ts = g.terms(w)
        assert len(ts) <= 2
        assert sum(s * 2 ** e for s, e in ts) == w
        assert all(s in (-1, 1) for s, _ in ts)


@given(st.integers(-(1 << 20), 1 << 20))
def test_terms_reconstruct(w):
    ts = g.terms(w)
    assert sum(s * 2 ** e for s, e in ts) == w
    # non-adjacent form: no two neighbouring exponents
    es = sorted(e for _, e in ts)
    assert all(b - a >= 2 for a, b in zip(es, es[1:]))


@pytest.mark.parametrize("nbits,digits", [(8, 4), (6, 3)])
def test_booth_radix4_int8_int6(nbits, digits):
    for w in range(-(1 << (nbits - 1)), 1 << (nbits - 1)):
        d = g.booth_radix4(w, nbits)
        assert len(d) == digits
        assert set(d) <= {-2, -1, 0, 1, 2}
        assert sum(x * 4 ** i for i, x in enumerate(d)) == w


def test_booth_errors():
    with pytest.raises(ValueError, match="radix-4 Booth needs an even width >= 2, not 5"):
        g.booth_radix4(0, 5)
    with pytest.raises(ValueError, match="128 does not fit in 8 bits"):
        g.booth_radix4(128, 8)


@given(st.integers(2, 16).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(-(1 << (n - 1)), (1 << (n - 1)) - 1))), st.booleans())
def test_serial_bits_roundtrip(nw, msb):
    n, w = nw
    bits = g.serial_bits(w, n, msb)
    assert len(bits) == n and set(bits) <= {0, 1}
    assert g.from_serial_bits(bits, msb) == w
    assert bits[0 if msb else -1] == (w < 0)


def test_serial_bits_examples():
    assert g.serial_bits(-3, 4, True) == [1, 1, 0, 1]
    assert g.serial_bits(-3, 4, False) == [1, 0, 1, 1]
    with pytest.raises(ValueError, match="8 does not fit in 4 bits"):
        g.serial_bits(8, 4)


@st.composite
def pe_ops(draw):
    n = draw(st.integers(2, 8))
    lanes = draw(st.integers(1, 4))
    beats = draw(st.integers(1, 6))
    a = draw(st.lists(st.integers(-128, 127), min_size=lanes * beats, max_size=lanes * beats))
    w = draw(st.lists(st.integers(-(1 << (n - 1)), (1 << (n - 1)) - 1),
                      min_size=lanes * beats, max_size=lanes * beats))
    return n, lanes, a, w


@given(pe_ops(), st.booleans(), st.integers(8, 40))
def test_pe_serial_equals_dot(op, msb, acc_width):
    n, lanes, a, w = op
    exact = sum(x * y for x, y in zip(a, w))
    assert g.pe_dot(a, w, n, 64) == exact
    assert g.pe_dot_serial(a, w, n, acc_width, lanes, msb) == g.pe_dot(a, w, n, acc_width)
    assert g.pe_dot(a, w, n, acc_width) == g.wrap(exact, acc_width)


def test_pe_dot_extremes_and_errors():
    assert g.pe_dot([-128], [-128], 8, 32) == 16384
    assert g.pe_dot_serial([-128, -128], [-128, -128], 8, 32, 2, False) == 32768
    with pytest.raises(ValueError, match=r"weights must fit in 3 bits \(\[-4, 3\]\)"):
        g.pe_dot([1], [4], 3, 16)
    with pytest.raises(ValueError, match="acts and weights differ in length"):
        g.pe_dot([1, 2], [1], 3, 16)


@given(st.lists(st.tuples(st.integers(-(1 << 20), 1 << 20), st.integers(0, 255)),
                min_size=1, max_size=8), st.integers(29, 40))
def test_dequant_serial(groups, acc_width):
    sums, scales = zip(*groups)
    want = g.wrap(sum(s * c for s, c in groups), acc_width)
    assert g.dequant(sums, scales, acc_width) == want
    assert g.dequant_serial(sums, scales, 8, acc_width) == want


def test_dequant_scale_too_wide():
    with pytest.raises(ValueError, match="scale 256 does not fit in 8 unsigned bits"):
        g.dequant_serial([1], [256], 8, 32)


@pytest.mark.parametrize("fam", ["bitmod_fp4", "bitmod_fp3", "int4", "int8"])
@given(w=tiled_arrays(3, 256, group=128), s=st.floats(0.01, 100))
def test_quantize_int_scale_properties(fam, w, s):
    w = w * s
    q = g.quantize_int_scale(w, fam, group=128, scale_bits=8)
    assert q.codes.shape == w.shape and q.scale_int.shape == (3, 2)
    assert q.scale_int.min() >= 1 and q.scale_int.max() <= 255
    # the row exponent is the smallest one: the largest candidate scale of the row, on
    # the grid 2**row_exp, lies in [128, 255] (it would overflow one exponent lower)
    cands = g.family(fam)
    amax = np.abs(w).reshape(3, 2, 128).max(-1)
    top = np.max([amax / t.max_abs for t in cands], axis=(0, 2))
    top_int = np.round(np.ldexp(top, -q.row_exp))
    assert ((top_int >= 128) & (top_int <= 255)).all()
    # brute force: every candidate, its own rounded scale, nearest grid value by argmin;
    # the chosen candidate's error is the smallest (ties to the first)
    wd = q.dequantize()
    for r in range(3):
        for gi in range(2):
            sl = slice(gi * 128, gi * 128 + 128)
            errs = []
            for t in cands:
                si = min(max(round(float(np.ldexp(amax[r, gi] / t.max_abs, -q.row_exp[r]))),
                             1), 255)
                sc = si * 2.0 ** q.row_exp[r]
                vals = np.array(t.values) * sc
                near = vals[np.abs(w[r, sl][:, None] - vals[None]).argmin(1)]
                errs.append(((w[r, sl] - near) ** 2).sum())
            assert q.types[r, gi] == int(np.argmin(errs))
            assert ((w[r, sl] - wd[r, sl]) ** 2).sum() == pytest.approx(min(errs))
    # error bound: at most half the largest grid gap times the scale, per weight
    for r in range(3):
        for gi in range(2):
            t = g.family(fam)[q.types[r, gi]]
            vals = np.sort(np.array(t.values))
            gap = np.diff(vals).max() / 2
            sc = q.scale_int[r, gi] * 2.0 ** q.row_exp[r]
            sl = slice(gi * 128, gi * 128 + 128)
            inside = (w[r, sl] / sc >= vals[0]) & (w[r, sl] / sc <= vals[-1])
            assert (np.abs(w[r, sl] - wd[r, sl])[inside] <= gap * sc * (1 + 1e-12)).all()


def test_bitmod_extra_value_is_used():
    # a group whose maximum is +8 x a unit and the rest on the FP4 grid: EA+ is exact
    w = np.zeros((1, 128))
    w[0, :8] = [8, 6, 4, 3, 2, 1.5, 1, -0.5]
    q = g.quantize_int_scale(w, "bitmod_fp4", group=128)
    assert g.FAMILIES["bitmod_fp4"][q.types[0, 0]] == "bitmod_fp4_ea_pos"
    assert np.array_equal(q.dequantize(), w)


@given(w=tiled_arrays(4, 256, group=128),
       x=arrays(np.int64, 256, elements=st.integers(-128, 127)),
       fam=st.sampled_from(["bitmod_fp4", "bitmod_fp3", "int3"]))
def test_gemv_is_the_dequantised_product(w, x, fam):
    q = g.quantize_int_scale(w, fam, group=128)
    y = g.gemv(q, x)
    # exact in float64 here: |y| < 2**53
    ref = q.dequantize() @ x.astype(np.float64)
    assert np.array_equal(np.ldexp(np.array(y, dtype=np.float64), q.row_exp + q.lsb_exp), ref)


def test_quantize_errors():
    with pytest.raises(ValueError, match="group must be a positive integer dividing cols=100"):
        g.quantize_int_scale(np.zeros((1, 100)), "bitmod_fp4", 128)
    with pytest.raises(ValueError, match=r"w must be 2-D, not of shape \(4,\)"):
        g.quantize_int_scale(np.zeros(4))
    with pytest.raises(KeyError, match="unknown family 'fp9'"):
        g.quantize_int_scale(np.zeros((1, 128)), "fp9")
    with pytest.raises(KeyError, match="unknown weight type 'int9'"):
        g.weight_type("int9")
    with pytest.raises(ValueError, match=r"int3 codes must lie in \[0, 7\], not 8"):
        g.weight_ints("int3", [8])


@pytest.mark.parametrize("name", list(EXTRA))
def test_types_match_golden_bitmod_tables(name):
    """The code -> value tables are golden.bitmod's (formats registry), code for code."""
    from mxhw.golden import bitmod, formats  # noqa: F401  (registers the BitMoD formats)
    assert list(formats.get(name).table) == list(g.weight_type(name).values)
    fam = "bitmod_" + name.split("_")[1]
    assert [c.name for c in formats.get(fam).candidates] == list(g.FAMILIES[fam])
