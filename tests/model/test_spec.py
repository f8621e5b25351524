"""Spec parsing, round trips and errors."""

import json

import pytest
from hypothesis import given, strategies as st

from mxhw import golden
from mxhw.model import LayerSpec, Spec, SpecError
from support.hyp import budget
from support.model import TinyMLP

FMTS = ["mxfp4", "mxfp8_e4m3", "mxsf", "bitmod_fp4", "int4_g128", "mxint8_mase", "fp8_e4m3_pt"]


@st.composite
def specs(draw):
    d = {}
    for i in range(draw(st.integers(0, 4))):
        pat = draw(st.sampled_from(["fc*", "*.attention.*", "encoder.layer.[0-2].*", "x.y",
                                    "*dense*", "a b"])) + str(i)
        if draw(st.booleans()):
            d[pat] = "float"
        else:
            d[pat] = {"w": draw(st.sampled_from(FMTS)),
                      "a": draw(st.sampled_from([None, *FMTS])),
                      "acc": draw(st.sampled_from(["fp32", "fixed(32,16)", "fixed(24,-3)"]))}
    if draw(st.booleans()):
        d["default"] = {"w": draw(st.sampled_from(FMTS))}
    return Spec.from_dict(d)


@budget(40)
@given(specs())
def test_toml_and_json_round_trip(tmp_path_factory, spec):
    d = tmp_path_factory.mktemp("spec")
    for ext in ("toml", "json"):
        p = d / f"s.{ext}"
        spec.save(p)
        assert Spec.from_file(p) == spec
        assert Spec.from_file(p).rules == spec.rules  # order kept
    assert Spec.from_dict(json.loads(spec.to_json())) == spec


def test_first_match_then_default_then_float():
    s = Spec.from_dict({"fc1": "float", "fc*": {"w": "mxfp4"}, "default": {"w": "mxsf"}})
    assert s.resolve("fc1").is_float
    assert s.resolve("fc2") == LayerSpec("mxfp4", None, "fp32")
    assert s.resolve("out") == LayerSpec("mxsf", None, "fp32")
    assert Spec.from_dict({"fc*": {"w": "mxfp4"}}).resolve("out").is_float


def test_table_and_bits_per_weight_come_from_golden():
    net = TinyMLP(h=32, n=3)
    s = Spec.from_dict({"fc1": {"w": "mxfp4", "a": "mxfp8_e4m3"}, "fc2": "float"})
    p1, p2 = 32 * 32, 32 * 3
    bw = (golden.formats.get("mxfp4").bits_per_value * p1 + 32 * p2) / (p1 + p2)
    assert s.bits_per_weight(net) == pytest.approx(bw)
    t = s.table(net)
    assert "fc1" in t and "4.250" in t and "8.250" in t and "float" in t


@pytest.mark.parametrize("d, msg", [
    ({"default": {"w": "mxfp9"}}, "unknown weight format 'mxfp9'"),
    ({"x": {"w": "fp4_e2m1"}}, "is an element format"),
    ({"x": {"w": "mxfp4", "acc": "fp16"}}, "acc must be 'fp32' or 'fixed"),
    ({"x": {"w": "mxfp4", "acc": "fixed(1,0)"}}, "width must be >= 2"),
    ({"x": {"w": "mxfp4", "bits": 4}}, "unknown key"),
    ({"x": {"a": "mxfp4"}}, "missing 'w'"),
    ({"x": "int8"}, "'float' or a table"),
    ({"x": {"w": "float", "a": "mxfp4"}}, "float layer cannot quantise activations"),
    ([1, 2], "a spec is a table"),
])
def test_bad_specs_give_one_line_errors(d, msg):
    with pytest.raises(SpecError, match=msg) as e:
        Spec.from_dict(d)
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path):
    (tmp_path / "a.toml").write_text("[x\n")
    (tmp_path / "a.json").write_text("{")
    (tmp_path / "a.yaml").write_text("")
    for name, msg in [("a.toml", "invalid TOML"), ("a.json", "invalid JSON"),
                      ("a.yaml", "ends in .toml or .json"), ("none.toml", "cannot read spec")]:
        with pytest.raises(SpecError, match=msg):
            Spec.from_file(tmp_path / name)
