"""The re-quantiser's RCEIL scale rule (``<fmt>_rceil``, golden.scale_rules ``ocp_rceil``,
torchao's RCEIL) on fixed-point input, against golden.quantize: Hypothesis-drawn blocks,
blocks whose maximum sits on either side of each binade's RCEIL threshold, and the
refused combinations."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.dequant import Requantizer
from mxhw.dequant.requant_logic import rceil_thresholds
from support.hyp import budget
from support.pe import check_requant, fixed_blocks, sized, waits

FMTS = ["mxfp8_e4m3_rceil", "mxfp8_e5m2_rceil", "mxfp6_e3m2_rceil", "mxfp6_e2m3_rceil",
        "mxfp4_e2m1_rceil", "mxint8_rceil"]


check = check_requant


def test_rule_differs_from_floor():
    """RCEIL and floor give different scales on some fixed-point blocks (e.g. 255 in
    MXFP8 E4M3, the issue's example), so these tests tell the rules apart."""
    x = np.array([[255.0, 1.0, 0.0, 3.0]])
    f = golden.quantize(x, sized("mxfp8_e4m3", 4))
    r = golden.quantize(x, sized("mxfp8_e4m3_rceil", 4))
    assert int(r.scales[0, 0]) == int(f.scales[0, 0]) + 1


@budget(12)
@given(st.sampled_from(FMTS), st.integers(2, 30), st.integers(-8, 40), st.integers(0, 7),
       st.data(), waits(), waits())
def test_rceil_vs_golden(fmt, in_width, in_frac, pipeline, data, idle, stall):
    k = 4
    f = sized(fmt, k)
    top = in_width - in_frac - f.element.emax       # the rule's largest exponent
    if top > 127:
        in_frac += top - 127
    dut = Requantizer(f, in_width=in_width, in_frac=in_frac, pipeline=pipeline)
    blocks = data.draw(st.lists(fixed_blocks(k, in_width), min_size=1, max_size=24))
    check(dut, blocks, idle, stall)


@budget(8)
@given(st.sampled_from(FMTS), st.integers(4, 28), st.integers(0, 20), st.data())
def test_rceil_thresholds_both_sides(fmt, in_width, in_frac, data):
    """Blocks whose max|x| is a binade's RCEIL threshold or one above it (negated at
    random), the other elements drawn."""
    k = 4
    f = sized(fmt, k)
    dut = Requantizer(f, in_width=in_width, in_frac=in_frac, pipeline=2)
    thr = rceil_thresholds(f.element, in_width, in_frac)
    blocks = []
    for _ in range(data.draw(st.integers(1, 12))):
        p = data.draw(st.integers(0, in_width - 2))
        amax = min(thr[p] + data.draw(st.integers(0, 1)), (1 << (in_width - 1)) - 1)
        rest = data.draw(st.lists(st.integers(-amax, amax), min_size=k - 1, max_size=k - 1))
        sign = data.draw(st.sampled_from([1, -1]))
        pos = data.draw(st.integers(0, k - 1))
        blocks.append(rest[:pos] + [sign * amax] + rest[pos:])
    check(dut, blocks)


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3_rceil", "mxfp4_e2m1_rceil"])
def test_rceil_k32(fmt):
    rng = np.random.default_rng(11)
    dut = Requantizer(fmt, in_width=24, in_frac=12)
    blocks = [list(rng.integers(-(1 << 23), 1 << 23, 32) >> rng.integers(0, 23))
              for _ in range(6)]
    check(dut, blocks)


@pytest.mark.parametrize("fmt, kwargs, msg", [
    ("mxfp8_e4m3_rceil", {"in_kind": "fp32"}, "RCEIL scale rule is implemented for in_kind "
                                               "'fixed' only"),
    ("mxfp8_e4m3_ceil", {}, "floor or RCEIL rule"),
    ("mxfp4_e2m1_even", {}, "floor or RCEIL rule"),
    ("mxfp4_plus", {}, "floor or RCEIL rule"),
    ("nvfp4", {}, "floor or RCEIL rule"),
])
def test_refused(fmt, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Requantizer(fmt, **kwargs)
