"""Per-layer format specs: module-name patterns -> weight/activation formats, accumulation.

A spec is an ordered mapping ``pattern -> entry``; the first pattern that matches a
module's name (``fnmatch``) wins, else the ``"default"`` entry, else the layer stays in
float. An entry is ``"float"`` or ``{"w": fmt, "a": fmt or None, "acc": "fp32" |
"fixed(W,F)"}`` (``{"w": "float"}`` is also float).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import golden

__all__ = ["LayerSpec", "Spec", "SpecError", "parse_acc", "bits_per_value"]


class SpecError(ValueError):
    """A spec (file, dict or CLI argument) that cannot be used."""


_ACC_RE = re.compile(r"^\s*fixed\s*\(\s*(\d+)\s*,\s*(-?\d+)\s*\)\s*$")


def parse_acc(acc: str):
    """``"fp32"`` -> ``golden.FP32``; ``"fixed(W,F)"`` -> ``golden.fixed(W, F)``."""
    if isinstance(acc, golden.Accumulation):
        return acc
    if not isinstance(acc, str):
        raise SpecError(f"acc must be 'fp32' or 'fixed(W,F)', not {acc!r}")
    if acc.strip().lower() == "fp32":
        return golden.FP32
    m = _ACC_RE.match(acc)
    if not m:
        raise SpecError(f"acc must be 'fp32' or 'fixed(W,F)' (e.g. 'fixed(32,16)'), not {acc!r}")
    try:
        return golden.fixed(int(m.group(1)), int(m.group(2)))
    except ValueError as e:
        raise SpecError(f"acc {acc!r}: {e}") from None


def spec_format(name, what):
    """The block format named ``name`` (aliases resolved); ``what`` is ``"where: kind"``
    (``"layer x: weight"``, or ``"--formats: "``) for the one-line :class:`SpecError`."""
    where, _, kind = what.rpartition(": ")
    where = where + ": " if where else ""
    noun = f"{kind} format" if kind else "format"
    if not isinstance(name, str):
        raise SpecError(f"{where}{noun} must be a name, not {name!r}")
    try:
        f = golden.formats.get(name)
    except KeyError:
        raise SpecError(f"{where}unknown {noun} {name!r}; block formats: "
                        f"{', '.join(golden.formats.block_names())}") from None
    if not isinstance(f, golden.BlockFormat):
        raise SpecError(f"{where}{noun} {name!r} is an element format; use a block format "
                        f"such as {'mx' + name if 'mx' + name in golden.formats.names() else 'mxfp4'}")
    return f


def bits_per_value(fmt, n: int | None = None) -> float:
    """Storage bits per value of block format ``fmt``: golden's ``bits_per_value``; a
    per-tensor format amortises its one scale over ``n`` values (element bits only when
    ``n`` is None, e.g. activations whose tensor size varies)."""
    f = golden.formats.get(fmt)
    if f.per_tensor:
        return f.bits_per_value_for(n) if n else float(max(c.bits for c in f.candidates))
    return f.bits_per_value


@dataclass(frozen=True)
class LayerSpec:
    """What one linear layer becomes. ``w is None``: stays in float."""

    w: str | None = None
    a: str | None = None
    acc: str = "fp32"

    @property
    def is_float(self) -> bool:
        return self.w is None

    @classmethod
    def from_entry(cls, entry, where="entry"):
        if isinstance(entry, str):
            if entry.strip().lower() == "float":
                return cls()
            raise SpecError(f"{where}: an entry is 'float' or a table with keys w, a, acc; "
                            f"got the string {entry!r}")
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: an entry is 'float' or a table with keys w, a, acc; "
                            f"got {entry!r}")
        bad = set(entry) - {"w", "a", "acc"}
        if bad:
            raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(bad))}; "
                            f"allowed: w, a, acc")
        w = entry.get("w")
        if w is None:
            raise SpecError(f"{where}: missing 'w' (a weight format or 'float')")
        if isinstance(w, str) and w.strip().lower() == "float":
            if entry.get("a") not in (None, "none", "float"):
                raise SpecError(f"{where}: a float layer cannot quantise activations")
            return cls()
        spec_format(w, f"{where}: weight")
        a = entry.get("a")
        if isinstance(a, str) and a.strip().lower() in ("none", "float", ""):
            a = None
        if a is not None:
            spec_format(a, f"{where}: activation")
        acc = entry.get("acc", "fp32")
        try:
            parse_acc(acc)
        except SpecError as e:
            raise SpecError(f"{where}: {e}") from None
        return cls(w=w, a=a, acc=acc.strip() if isinstance(acc, str) else acc)

    def to_entry(self):
        if self.is_float:
            return {"w": "float"}
        d = {"w": self.w}
        if self.a is not None:
            d["a"] = self.a
        d["acc"] = self.acc
        return d

    def bits_w(self, n=None) -> float:
        return 32.0 if self.is_float else bits_per_value(self.w, n)

    def bits_a(self, n=None) -> float:
        return 32.0 if self.a is None else bits_per_value(self.a, n)


class Spec:
    """An ordered list of ``(pattern, LayerSpec)`` plus a default (``None``: float)."""

    def __init__(self, rules=(), default: LayerSpec | None = None):
        self.rules = [(p, r) for p, r in rules]
        self.default = default

    def __eq__(self, other):
        return (isinstance(other, Spec) and self.rules == other.rules
                and (self.default or LayerSpec()) == (other.default or LayerSpec()))

    def __repr__(self):
        return f"Spec(rules={self.rules!r}, default={self.default!r})"

    @classmethod
    def uniform(cls, w, a=None, acc="fp32"):
        return cls.from_dict({"default": {"w": w, "a": a, "acc": acc}})

    @classmethod
    def from_dict(cls, d):
        if isinstance(d, Spec):
            return d
        if not isinstance(d, dict):
            raise SpecError(f"a spec is a table of pattern -> entry, not {type(d).__name__}")
        rules, default = [], None
        for pat, entry in d.items():
            if not isinstance(pat, str) or not pat:
                raise SpecError(f"spec patterns must be non-empty strings, not {pat!r}")
            r = LayerSpec.from_entry(entry, where=f"spec entry {pat!r}")
            if pat == "default":
                default = r
            else:
                rules.append((pat, r))
        return cls(rules, default)

    @classmethod
    def from_file(cls, path):
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise SpecError(f"cannot read spec {str(p)!r}: {e.strerror}") from None
        if p.suffix.lower() == ".json":
            try:
                d = json.loads(text)
            except json.JSONDecodeError as e:
                raise SpecError(f"{p}: invalid JSON: {e}") from None
        elif p.suffix.lower() == ".toml":
            import tomllib
            try:
                d = tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                raise SpecError(f"{p}: invalid TOML: {e}") from None
        else:
            raise SpecError(f"{p}: a spec file ends in .toml or .json")
        return cls.from_dict(d)

    def to_dict(self):
        d = {p: r.to_entry() for p, r in self.rules}
        if self.default is not None:
            d["default"] = self.default.to_entry()
        return d

    def to_toml(self) -> str:
        # every entry is a table, so the file keeps the rules' order
        lines = ["# mxhw.model spec: first matching pattern wins, else 'default', else float"]
        for pat, entry in self.to_dict().items():
            lines.append("")
            lines.append(f"[{json.dumps(pat)}]")
            for k, v in entry.items():
                lines.append(f"{k} = {json.dumps(v)}")
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path):
        p = Path(path)
        p.write_text(self.to_json() if p.suffix.lower() == ".json" else self.to_toml())

    def resolve(self, name: str) -> LayerSpec:
        for pat, r in self.rules:
            if fnmatch.fnmatchcase(name, pat):
                return r
        return self.default or LayerSpec()

    def assign(self, model):
        """``{name: (LayerSpec, in_features, out_features)}`` for every ``nn.Linear``."""
        import torch.nn as nn
        from .quant import MXLinear
        out = {}
        for name, m in model.named_modules():
            if isinstance(m, MXLinear):
                out[name] = (self.resolve(name), m.in_features, m.out_features)
            elif isinstance(m, nn.Linear):
                out[name] = (self.resolve(name), m.in_features, m.out_features)
        return out

    def table(self, model) -> str:
        """One line per linear layer: formats, accumulation, bits per weight and per
        activation (golden's bits per value; float = 32), and the parameter-weighted mean."""
        rows = self.assign(model)
        w = max([len(n) for n in rows] + [5])
        head = f"{'layer':<{w}}  {'weights':<14} {'acts':<14} {'acc':<14} {'b/w':>6} {'b/a':>6}"
        lines = [head, "-" * len(head)]
        for n, (r, k, o) in rows.items():
            lines.append(f"{n:<{w}}  {r.w or 'float':<14} {r.a or 'float':<14} "
                         f"{'-' if r.is_float else r.acc:<14} {r.bits_w(k * o):6.3f} "
                         f"{r.bits_a(k):6.3f}")
        lines.append(f"{'mean (weighted by parameters)':<{w}}  {'':<44}"
                     f"{self.bits_per_weight(model):6.3f}")
        return "\n".join(lines)

    def bits_per_weight(self, model) -> float:
        rows = self.assign(model)
        tot = sum(k * o for _, k, o in rows.values())
        if not tot:
            return 0.0
        return sum(r.bits_w(k * o) * k * o for r, k, o in rows.values()) / tot
