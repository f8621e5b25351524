"""The design-space file of :mod:`mxhw.dse`: reading (TOML or JSON), checking, and the
points it spans. The schema is documented in ``docs/dse.md``.

A *point* is a plain dict (JSON-serialisable, so it travels to Dask workers and into the
database)::

    {"hw": {"rows", "cols", "dataflow", "fmt_a", "fmt_b", "acc": [width, frac]},
     "spec_name": str, "spec": {"default": {"w": fmt, "a": fmt or None}, pattern: ...},
     "model": str, "ppa": bool}

and its key (:func:`point_key`) is a hash of its canonical JSON without ``spec_name`` (a
label: renaming a spec reuses its results).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from pathlib import Path

__all__ = ["SpaceError", "MAX_POINTS", "MAX_ARRAY", "MAX_PES", "DATAFLOWS", "PPA_MODES",
           "METRICS", "load_space", "check_space", "points", "point_key", "canonical",
           "hw_key", "spec_key", "point_name"]


class SpaceError(ValueError):
    """A design-space file or dict that does not follow the schema (one-line message)."""


#: Hard bound on the points of one space (a space may set a lower ``max_points``).
MAX_POINTS = 1000
#: Largest array side, and the largest number of PEs (rows x cols) of a point: the PPA
#: suite's largest arrays (16x16 takes tens of minutes to synthesise).
MAX_ARRAY = 16
MAX_PES = MAX_ARRAY * MAX_ARRAY
DATAFLOWS = ("output_stationary", "weight_stationary")
#: ``ppa``: the PPA suite (``true``), none (``false``).
PPA_MODES = (True, False)
#: ``metric``: ``model`` (:func:`mxhw.model.evaluate`), ``sqnr`` (golden SQNR of the
#: spec's default weight format on synthetic tensors), ``none``.
METRICS = ("model", "sqnr", "none")
#: The PPA suite's cross-block accumulation of the arrays (fixed point: width, fraction).
DEFAULT_ACC = (32, 16)

_TOP_KEYS = {"sweep", "hardware", "specs"}
_SWEEP_KEYS = {"name", "model", "metric", "ppa", "objective", "minimize", "max_points"}
_HW_KEYS = {"sizes", "dataflows", "formats", "acc"}


def load_space(path):
    """The space dict in file ``path`` (``.toml`` or ``.json``), checked
    (:func:`check_space`). Raises :class:`SpaceError` with a one-line message."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpaceError(f"{path}: cannot read ({e.strerror or e})") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SpaceError(f"{path}: not valid TOML ({e})") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpaceError(f"{path}: not valid JSON ({e})") from None
    else:
        raise SpaceError(f"{path}: the space file must end in .toml or .json")
    try:
        return check_space(data)
    except SpaceError as e:
        raise SpaceError(f"{path}: {e}") from None


def _fail(msg):
    raise SpaceError(msg)


def _block_format(where, name):
    from . import golden
    if not isinstance(name, str):
        _fail(f"{where}: a format name (string), not {name!r}")
    try:
        f = golden.formats.get(name)
    except KeyError:
        _fail(f"{where}: unknown format {name!r}; block formats: "
              f"{', '.join(golden.formats.block_names())}")
    if not isinstance(f, golden.formats.BlockFormat):
        _fail(f"{where}: {name!r} is an element format, not a block format")
    return f


def _array_format(where, name):
    """``name`` as a block format the systolic arrays accept."""
    from .systolic import array_block_format as block_format
    _block_format(where, name)
    try:
        return block_format(name, where)
    except (TypeError, ValueError) as e:
        _fail(str(e).splitlines()[0])


def _int(where, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        _fail(f"{where}: an integer in {lo}..{hi}, not {v!r}")
    return v


def _list(where, v):
    if not isinstance(v, list) or not v:
        _fail(f"{where}: a non-empty list, not {v!r}")
    return v


def _unknown(where, d, allowed):
    extra = sorted(set(d) - allowed)
    if extra:
        _fail(f"{where}: unknown key(s) {', '.join(map(repr, extra))}; allowed: "
              f"{', '.join(sorted(allowed))}")


def _check_hw(hw):
    if not isinstance(hw, dict):
        _fail(f"[hardware]: a table, not {hw!r}")
    _unknown("[hardware]", hw, _HW_KEYS)
    for k in ("sizes", "formats"):
        if k not in hw:
            _fail(f"[hardware]: missing {k!r}")
    sizes = []
    for i, s in enumerate(_list("hardware.sizes", hw["sizes"])):
        w = f"hardware.sizes[{i}]"
        if isinstance(s, list):
            if len(s) != 2:
                _fail(f"{w}: n or [rows, cols], not {s!r}")
            r, c = (_int(w, x, 1, MAX_ARRAY) for x in s)
        else:
            r = c = _int(w, s, 1, MAX_ARRAY)
        if r * c > MAX_PES:
            _fail(f"{w}: {r}x{c} exceeds {MAX_PES} PEs")
        sizes.append([r, c])
    dataflows = hw.get("dataflows", ["output_stationary"])
    for i, d in enumerate(_list("hardware.dataflows", dataflows)):
        if d not in DATAFLOWS:
            _fail(f"hardware.dataflows[{i}]: one of {', '.join(DATAFLOWS)}, not {d!r}")
    formats = []
    for i, f in enumerate(_list("hardware.formats", hw["formats"])):
        w = f"hardware.formats[{i}]"
        if isinstance(f, str):
            f = [f, f]
        if not isinstance(f, list) or len(f) != 2:
            _fail(f"{w}: a block format or [fmt_a, fmt_b], not {f!r}")
        fa, fb = _array_format(w, f[0]), _array_format(w, f[1])
        if fa.block_size != fb.block_size:
            _fail(f"{w}: block sizes differ ({f[0]} {fa.block_size}, {f[1]} "
                  f"{fb.block_size})")
        formats.append([f[0], f[1]])
    for k, vals in (("sizes", sizes), ("dataflows", dataflows), ("formats", formats)):
        for i, v in enumerate(vals):
            if v in vals[:i]:
                _fail(f"hardware.{k}[{i}]: {v!r} is listed twice")
    acc = hw.get("acc", list(DEFAULT_ACC))
    if not isinstance(acc, list) or len(acc) != 2:
        _fail(f"hardware.acc: [width, frac_bits], not {acc!r}")
    acc = [_int("hardware.acc[0]", acc[0], 2, 64), _int("hardware.acc[1]", acc[1], 0, 63)]
    return {"sizes": sizes, "dataflows": list(dataflows), "formats": formats, "acc": acc}


def _spec_format(where, v, none_ok):
    from .golden.compare import PSEUDO
    if v is None or (none_ok and v == "none"):
        if none_ok:
            return None
        _fail(f"{where}: a weight format is required")
    if v in PSEUDO:
        return v
    _block_format(where, v)
    return v


def _check_spec(name, spec):
    w = f"specs.{name}"
    if not isinstance(spec, dict):
        _fail(f"{w}: a table of patterns, not {spec!r}")
    if "default" not in spec:
        _fail(f"{w}: missing 'default'")
    out = {}
    for pat, entry in spec.items():
        pw = f"{w}.{pat!r}" if not pat.isidentifier() else f"{w}.{pat}"
        if not isinstance(entry, dict):
            _fail(f"{pw}: {{w = fmt, a = fmt or \"none\"}}, not {entry!r}")
        _unknown(pw, entry, {"w", "a"})
        if "w" not in entry:
            _fail(f"{pw}: missing 'w'")
        out[pat] = {"w": _spec_format(f"{pw}.w", entry["w"], False),
                    "a": _spec_format(f"{pw}.a", entry.get("a"), True)}
    return out


def check_space(data):
    """``data`` (the parsed space file) checked and normalised: defaults filled in,
    ``sizes`` as ``[rows, cols]``, ``formats`` as ``[fmt_a, fmt_b]``, specs' ``a`` as a
    format or None. Raises :class:`SpaceError`."""
    if not isinstance(data, dict):
        _fail(f"the space must be a table (object), not {type(data).__name__}")
    _unknown("the space", data, _TOP_KEYS)
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict):
        _fail(f"[sweep]: a table, not {sweep!r}")
    _unknown("[sweep]", sweep, _SWEEP_KEYS)
    ppa = sweep.get("ppa", True)
    if ppa not in PPA_MODES or not isinstance(ppa, bool):
        _fail(f"sweep.ppa: true or false, not {ppa!r}")
    metric = sweep.get("metric", "model")
    if metric not in METRICS:
        _fail(f"sweep.metric: one of {', '.join(METRICS)}, not {metric!r}")
    if metric == "none" and not ppa:
        _fail("sweep: ppa = false and metric = \"none\" leave nothing to measure")
    model = sweep.get("model", "minilm")
    if not isinstance(model, str) or not model:
        _fail(f"sweep.model: a model name, not {model!r}")
    name = sweep.get("name", "dse")
    if not isinstance(name, str):
        _fail(f"sweep.name: a string, not {name!r}")
    objective = sweep.get("objective")
    if objective is not None and not isinstance(objective, str):
        _fail(f"sweep.objective: a metric name, not {objective!r}")
    minimize = sweep.get("minimize", False)
    if not isinstance(minimize, bool):
        _fail(f"sweep.minimize: true or false, not {minimize!r}")
    max_points = _int("sweep.max_points", sweep.get("max_points", MAX_POINTS), 1, MAX_POINTS)
    if "hardware" not in data:
        _fail("missing [hardware]")
    hw = _check_hw(data["hardware"])
    specs = data.get("specs")
    if specs is None:
        _fail("missing [specs] (one table per spec: [specs.NAME] default = {w = ..., a = ...})")
    if not isinstance(specs, dict) or not specs:
        _fail(f"[specs]: a non-empty table of named specs, not {specs!r}")
    specs = {n: _check_spec(n, s) for n, s in specs.items()}
    n = len(hw["sizes"]) * len(hw["dataflows"]) * len(hw["formats"]) * len(specs)
    if n > max_points:
        _fail(f"the space has {n} points, more than max_points = {max_points}")
    return {"sweep": {"name": name, "model": model, "metric": metric, "ppa": ppa,
                      "objective": objective, "minimize": minimize,
                      "max_points": max_points},
            "hardware": hw, "specs": specs}


def points(space):
    """The points of checked ``space`` (see the module docstring), hardware-major in file
    order."""
    sw, hw = space["sweep"], space["hardware"]
    out = []
    for (r, c), df, (fa, fb) in itertools.product(hw["sizes"], hw["dataflows"],
                                                 hw["formats"]):
        for sname, spec in space["specs"].items():
            out.append({"hw": {"rows": r, "cols": c, "dataflow": df, "fmt_a": fa,
                               "fmt_b": fb, "acc": list(hw["acc"])},
                        "spec_name": sname, "spec": spec, "model": sw["model"],
                        "ppa": sw["ppa"], "metric": sw["metric"]})
    return out


def canonical(obj):
    """Canonical JSON of ``obj`` (sorted keys, no spaces)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _hash(obj):
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:32]


def point_key(point):
    """The point's key: a hash of its canonical JSON without the spec's label."""
    return _hash({k: v for k, v in point.items() if k != "spec_name"})


def hw_key(point):
    """What the PPA depends on: the hardware."""
    return _hash(point["hw"])


def spec_key(point):
    """What the metric depends on: the spec, the model and the metric kind."""
    return _hash([point["spec"], point["model"], point["metric"]])


def point_name(point):
    """A readable label: ``<fmt_a>x<fmt_b>_<rows>x<cols>_<os|ws>/<spec name>``."""
    h = point["hw"]
    fmts = h["fmt_a"] if h["fmt_a"] == h["fmt_b"] else f"{h['fmt_a']}_x_{h['fmt_b']}"
    df = "os" if h["dataflow"] == "output_stationary" else "ws"
    return f"{fmts}_{h['rows']}x{h['cols']}_{df}/{point['spec_name']}"
