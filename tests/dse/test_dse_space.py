"""mxhw.dse's space files: schema checks with one-line errors, bounds, points and keys."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxhw.dse_space import (MAX_ARRAY, MAX_POINTS, SpaceError, check_space, load_space,
                            point_key, points)
from support.dse import space, spec
from support.hyp import budget

TOML = """
[sweep]
name = "t"
metric = "sqnr"
ppa = false

[hardware]
sizes = [2, [2, 4]]
dataflows = ["output_stationary", "weight_stationary"]
formats = ["mxfp4", ["mxint8", "mxfp4"]]

[specs.w4]
default = {w = "mxfp4", a = "mxint8"}

[specs.mixed]
default = {w = "mxint8"}
"*.attn.*" = {w = "mxfp8_e4m3", a = "none"}
"""


def test_toml_and_json_give_the_same_points(tmp_path):
    (tmp_path / "s.toml").write_text(TOML)
    as_json = {"sweep": {"name": "t", "metric": "sqnr", "ppa": False},
               "hardware": {"sizes": [2, [2, 4]],
                            "dataflows": ["output_stationary", "weight_stationary"],
                            "formats": ["mxfp4", ["mxint8", "mxfp4"]]},
               "specs": {"w4": {"default": {"w": "mxfp4", "a": "mxint8"}},
                         "mixed": {"default": {"w": "mxint8"},
                                   "*.attn.*": {"w": "mxfp8_e4m3", "a": None}}}}
    (tmp_path / "s.json").write_text(json.dumps(as_json))
    a = points(load_space(tmp_path / "s.toml"))
    b = points(load_space(tmp_path / "s.json"))
    assert a == b
    assert len(a) == 2 * 2 * 2 * 2
    hws = {(p["hw"]["rows"], p["hw"]["cols"], p["hw"]["dataflow"], p["hw"]["fmt_a"],
            p["hw"]["fmt_b"]) for p in a}
    assert (2, 4, "weight_stationary", "mxint8", "mxfp4") in hws
    assert (2, 2, "output_stationary", "mxfp4", "mxfp4") in hws
    mixed = next(p for p in a if p["spec_name"] == "mixed")
    assert mixed["spec"] == {"default": {"w": "mxint8", "a": None},
                             "*.attn.*": {"w": "mxfp8_e4m3", "a": None}}
    assert all(p["hw"]["acc"] == [32, 16] for p in a)      # the PPA suite's arrays


def test_keys_are_distinct_and_ignore_the_spec_label():
    pts = points(check_space(space(sizes=[1, 2, 3])))
    assert len({point_key(p) for p in pts}) == len(pts)
    renamed = space(sizes=[1, 2, 3], specs={"x": spec("mxfp4", "mxint8"),
                                            "y": spec("mxint8")})
    assert [point_key(p) for p in points(check_space(renamed))] == \
        [point_key(p) for p in pts]


def _with(**changes):
    s = space()
    for path, v in changes.items():
        d = s
        *head, last = path.split("__")
        for k in head:
            d = d[k]
        d[last] = v
    return s


BAD = [
    ({"hardware": {"sizes": [2]}, "specs": {}}, "[hardware]: missing 'formats'"),
    (_with(hardware__sizes=[MAX_ARRAY + 1]),
     f"hardware.sizes[0]: an integer in 1..{MAX_ARRAY}, not {MAX_ARRAY + 1}"),
    (_with(hardware__sizes=[0]), "hardware.sizes[0]: an integer in 1..16, not 0"),
    (_with(hardware__sizes=[[2, 3, 4]]), "hardware.sizes[0]: n or [rows, cols]"),
    (_with(hardware__sizes=[]), "hardware.sizes: a non-empty list"),
    (_with(hardware__sizes=[2, [2, 2]]), "hardware.sizes[1]: [2, 2] is listed twice"),
    (_with(hardware__formats=["mxfp4", ["mxfp4", "mxfp4"]]),
     "hardware.formats[1]: ['mxfp4', 'mxfp4'] is listed twice"),
    (_with(hardware__formats=["mxfp5"]), "hardware.formats[0]: unknown format 'mxfp5'"),
    (_with(hardware__formats=["fp4_e2m1"]),
     "hardware.formats[0]: 'fp4_e2m1' is an element format, not a block format"),
    (_with(hardware__formats=["mxsf_tile"]), "2-D blocks"),
    (_with(hardware__formats=["int4_g128"]), "power-of-two scales"),
    (_with(hardware__formats=[["mxfp4", "mxint8", "mxint4"]]),
     "hardware.formats[0]: a block format or [fmt_a, fmt_b]"),
    (_with(hardware__dataflows=["row_stationary"]),
     "hardware.dataflows[0]: one of output_stationary, weight_stationary"),
    (_with(hardware__pe="bitserial"), "[hardware]: unknown key(s) 'pe'"),
    (_with(sweep__ppa="yes"), "sweep.ppa: true or false"),
    (_with(sweep__metric="bleu"), "sweep.metric: one of model, sqnr, none"),
    (_with(sweep__metric="none"), "leave nothing to measure"),
    (_with(sweep__max_points=0), "sweep.max_points: an integer in 1..1000"),
    (_with(sweep__max_points=3), "the space has 4 points, more than max_points = 3"),
    (_with(specs={}), "[specs]: a non-empty table"),
    (_with(specs={"s": {"*.attn.*": {"w": "mxfp4"}}}), "specs.s: missing 'default'"),
    (_with(specs={"s": {"default": {"a": "mxint8"}}}), "specs.s.default: missing 'w'"),
    (_with(specs={"s": {"default": {"w": "mxint8", "act": "mxint8"}}}),
     "specs.s.default: unknown key(s) 'act'"),
    (_with(specs={"s": {"default": {"w": "none"}}}), "specs.s.default.w: unknown format"),
    (_with(specs={"s": {"default": {"w": "mxfp4", "a": "fp8"}}}),
     "specs.s.default.a: unknown format 'fp8'"),
    ({"hardware": {"sizes": [1], "formats": ["mxfp4"]}}, "missing [specs]"),
    ({"specs": {"s": {"default": {"w": "mxfp4"}}}}, "missing [hardware]"),
    ({**space(), "extra": 1}, "the space: unknown key(s) 'extra'"),
    ([1, 2], "the space must be a table"),
]


@pytest.mark.parametrize("data, msg", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_spaces_give_one_line_errors(data, msg):
    with pytest.raises(SpaceError) as e:
        check_space(data)
    assert msg in str(e.value)
    assert "\n" not in str(e.value)


def test_point_count_is_bounded():
    big = _with(hardware__sizes=list(range(1, 17)), specs={
        f"s{i}": spec("mxfp4") for i in range(MAX_POINTS // 16 + 1)})
    with pytest.raises(SpaceError, match=f"more than max_points = {MAX_POINTS}"):
        check_space(big)


@pytest.mark.parametrize("name, text, msg", [
    ("s.toml", "[hardware\n", "not valid TOML"),
    ("s.json", "{", "not valid JSON"),
    ("s.yaml", "hardware: {}", "must end in .toml or .json"),
    ("s.toml", '[hardware]\nsizes = [2]\nformats = ["mxfp9"]\n[specs.a]\n'
               'default = {w = "mxfp4"}\n', "hardware.formats[0]: unknown format 'mxfp9'"),
])
def test_bad_files(tmp_path, name, text, msg):
    (tmp_path / name).write_text(text)
    with pytest.raises(SpaceError) as e:
        load_space(tmp_path / name)
    assert str(e.value).startswith(str(tmp_path / name) + ": ")
    assert msg in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(SpaceError, match="cannot read"):
        load_space(tmp_path / "nope.toml")


FORMATS = ["mxfp4", "mxint8", "mxfp8_e4m3", "mxfp6_e2m3"]


@budget(20)
@given(sizes=st.lists(st.integers(1, MAX_ARRAY), min_size=1, max_size=4, unique=True),
       fmts=st.lists(st.sampled_from(FORMATS), min_size=1, max_size=3, unique=True),
       nspecs=st.integers(1, 3),
       df=st.sets(st.sampled_from(["output_stationary", "weight_stationary"]), min_size=1))
def test_points_span_the_product(sizes, fmts, nspecs, df):
    s = space(sizes=sizes, formats=fmts,
              specs={f"s{i}": spec(FORMATS[i]) for i in range(nspecs)})
    s["hardware"]["dataflows"] = sorted(df)
    pts = points(check_space(s))
    assert len(pts) == len(sizes) * len(fmts) * nspecs * len(df)
    assert len({point_key(p) for p in pts}) == len(pts)
    # a checked space checks again to itself
    assert check_space(check_space(s)) == check_space(s)
