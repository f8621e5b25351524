"""Quantised linear layers whose forward is the accelerator's arithmetic, bit for bit.

:class:`MXLinear` computes ``y = x @ W.T + b`` with W (and optionally x) quantised by
golden, blocks along the input features (K):

* weights and activations both in formats ``golden.gemm`` multiplies (power-of-two or
  binary32 scales, equal blocks along K): the result is ``golden.gemm(xq, wq, acc)``
  exactly ("bit-exact to the device"); ``mode="reference"`` calls golden.gemm, ``"fast"``
  computes the same numbers vectorised: the activations quantised in torch by
  :mod:`.fastq`, the weights once by golden, the block dot products and golden's
  accumulation by :func:`block_accumulate`;
* weight-only (``a=None``) or a format golden.gemm cannot multiply (FP16 group scales,
  zero points, 2-D tiles, mismatched blocks): dequantise-then-matmul in float32 (exact
  dequantised values; the device has no such datapath, so this is an emulation only).

The bias is added afterwards, in float.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn

from .. import golden
from . import fastq
from .spec import LayerSpec, Spec, SpecError, parse_acc

__all__ = ["MXLinear", "quantize_model", "fast_gemm", "gemm_supported", "run_on_accelerator",
           "mx_layers", "fast_supported", "block_accumulate"]

_EXACT_F64 = 1 << 53
_CHUNK_BYTES = 8 << 20


def _kblock(fmt, K):
    if isinstance(fmt.block, tuple):
        return None
    return fmt.block if fmt.block is not None else None


def gemm_supported(a_fmt, w_fmt, K: int) -> bool:
    """True if ``golden.gemm`` multiplies an (M x K) ``a_fmt`` operand by a (K x N)
    ``w_fmt`` one: power-of-two/binary32 scales, no zero points, 1-D or per-tensor blocks
    equal along K, K a multiple of the block."""
    fa, fw = golden.formats.get(a_fmt), golden.formats.get(w_fmt)
    for f in (fa, fw):
        if f.scale.kind not in ("pow2", "int", "binary32") or f.zero_point is not None:
            return False
        if isinstance(f.block, tuple):
            return False
    ka, kw = fa.block, fw.block
    if ka is None:
        ka = K if kw is None else kw
    if kw is None:
        kw = ka
    return ka == kw and K % ka == 0


def _exact_bound(fmt) -> int:
    """The largest |element| of ``fmt`` in units of its grid (over its candidates): every
    dequantised block is a multiple of one unit (scale * 2**lsb) at most this many units
    in magnitude."""
    return max(int(np.abs(c.int_table[~c.nonfinite_mask]).max()) for c in fmt.candidates)


def fast_supported(a_fmt, w_fmt, K: int, acc) -> bool:
    """True if :func:`block_accumulate` reproduces ``golden.gemm`` for these formats and
    accumulation: power-of-two (or signed-exponent) scales, equal 1-D blocks dividing K,
    every block dot product provably exact in float64 (``k * bound_a * bound_w < 2**53``),
    FP32 or fixed accumulation with a register of at most 52 bits (saturating) or 62 bits
    (wrapping)."""
    fa, fw = golden.formats.get(a_fmt), golden.formats.get(w_fmt)
    acc = parse_acc(acc)
    k = fa.block
    return (all(f.scale.kind in ("pow2", "int") and f.zero_point is None and f.codec is None
                for f in (fa, fw))
            and isinstance(k, int) and k == fw.block and K % k == 0
            and acc.mode in ("fp32", "fixed")
            and not (acc.mode == "fixed" and (acc.width > 52 if acc.overflow == "saturate"
                                              else acc.width > 62))
            and k * _exact_bound(fa) * _exact_bound(fw) < _EXACT_F64)


def block_accumulate(xhat: torch.Tensor, what: torch.Tensor, k: int, acc):
    """golden.gemm's result from exact dequantised operands: ``xhat`` (M x K) and ``what``
    (K x N) float64 tensors whose blocks of ``k`` along K each lie on one power-of-two grid
    with :func:`fast_supported`'s bound, all finite. Returns a NumPy array (float32 for FP32
    accumulation, float64 for fixed), or None if a wrapping register would need more than
    int64 (the caller then asks golden).

    Per block pair the exact dot product is one float64 batched matmul (exact: every
    partial sum is an integer multiple of the two blocks' units below 2**53 of them); then
    golden's rule runs over the blocks in order: FP32 -- each block rounded RNE to float32,
    summed in float32 from +0.0; fixed -- each block scaled by 2**F, floored (or RNE),
    added with saturation (exact in float64 for widths <= 52) or wrap (int64).
    """
    acc = parse_acc(acc)
    M, K = xhat.shape
    N = what.shape[1]
    nb = K // k
    B = what.reshape(nb, k, N)
    A_all = xhat.reshape(M, nb, k).permute(1, 0, 2)
    out = np.empty((M, N), dtype=np.float32 if acc.mode == "fp32" else np.float64)
    rows = max(1, _CHUNK_BYTES // (8 * nb * max(N, 1)))
    for m0 in range(0, M, rows):
        V = torch.bmm(A_all[:, m0:m0 + rows], B)   # exact block values
        if acc.mode == "fp32":
            Vf = V.to(torch.float32)                   # RNE, one rounding per block
            r = Vf[0] + 0.0                            # +0.0 + x: golden starts from +0.0
            for j in range(1, nb):
                r.add_(Vf[j])
            out[m0:m0 + rows] = r.numpy()
            continue
        F, W = acc.frac_bits, acc.width
        lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
        T = V * (2.0 ** F) if -1000 < F < 1000 else torch.ldexp(V, torch.tensor(float(F)))
        T = torch.floor(T) if acc.rounding == "floor" else torch.round(T)  # round: half-even
        if acc.overflow == "saturate":
            r = torch.zeros(V.shape[1:], dtype=torch.float64)
            for j in range(nb):
                r = torch.clamp(r + T[j], lo, hi)
        else:
            if T.abs().max() >= 2.0 ** 62:
                return None
            Ti = T.to(torch.int64)
            r = torch.zeros(V.shape[1:], dtype=torch.int64)
            for j in range(nb):
                r = torch.remainder(r + Ti[j] - lo, 1 << W) + lo
            r = r.to(torch.float64)
        out[m0:m0 + rows] = torch.ldexp(r, torch.tensor(float(-F), dtype=torch.float64)).numpy()
    return out


def fast_gemm(xq: golden.MXArray, wq: golden.MXArray, acc) -> np.ndarray:
    """``golden.gemm(xq, wq, acc)``, bit for bit, vectorised (FP32 or fixed accumulation):
    :func:`block_accumulate` on the exact dequantised operands when :func:`fast_supported`
    holds and every value is finite; otherwise golden.gemm."""
    acc = parse_acc(acc)
    K = xq.shape[1]
    if not fast_supported(xq.fmt, wq.fmt, K, acc):
        return golden.gemm(xq, wq, acc)  # golden raises its own errors
    xhat, what = xq.dequantize(), wq.dequantize()
    if not (np.isfinite(xhat).all() and np.isfinite(what).all()):
        return golden.gemm(xq, wq, acc)
    out = block_accumulate(torch.from_numpy(xhat), torch.from_numpy(what), xq.fmt.block, acc)
    return golden.gemm(xq, wq, acc) if out is None else out


_WCACHE: dict = {}
_WCACHE_MAX = 512


def _quantized_weight(weight, fmt):
    """``golden.quantize(W.T, fmt, axis=0)``, cached by the tensor's identity and version
    (a search quantises the same weights to the same formats many times)."""
    key = (id(weight), weight._version, tuple(weight.shape), fmt.name)
    hit = _WCACHE.get(key)
    if hit is not None and hit[0] is weight:
        return hit[1]
    Wt = weight.detach().to("cpu", torch.float64).numpy().T  # (K, N)
    wq = golden.quantize(Wt, fmt, axis=0)
    if len(_WCACHE) >= _WCACHE_MAX:
        _WCACHE.clear()
    _WCACHE[key] = (weight, wq)
    return wq


def device_matmul(acc_dev, xq: golden.MXArray, wq: golden.MXArray) -> np.ndarray:
    """The one place a layer's matmul goes to the device: ``Accelerator.matmul`` with
    the quantised operands (activations M x K along K, weights K x N along K); the
    driver's layer API (upload weights once, ``linear``) can replace it here."""
    return acc_dev.matmul(xq, wq)


class MXLinear(nn.Module):
    """A quantised ``nn.Linear``; see the module doc.

    Parameters
    ----------
    linear : nn.Linear
    w, a : str
        Weight and (or None) input-activation block formats.
    acc : str
        ``"fp32"`` or ``"fixed(W,F)"``: how block dot products accumulate.
    mode : {"fast", "reference"}
    device : mxhw.soc.driver.Accelerator or None
        Run the matmul on this accelerator (see :meth:`attach`).
    """

    def __init__(self, linear: nn.Linear, w: str, a: str | None = None, acc: str = "fp32",
                 mode: str = "fast", name: str = "", device=None):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"MXLinear wraps an nn.Linear, not {type(linear).__name__}")
        if mode not in ("fast", "reference"):
            raise ValueError(f"mode must be 'fast' or 'reference', not {mode!r}")
        spec = LayerSpec.from_entry({"w": w, "a": a, "acc": acc}, where=name or "MXLinear")
        if spec.is_float:
            raise SpecError(f"{name or 'MXLinear'}: a float layer stays an nn.Linear")
        self.name, self.mode, self.spec = name, mode, spec
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.w_fmt = golden.formats.get(spec.w)
        self.a_fmt = golden.formats.get(spec.a) if spec.a else None
        self.acc = parse_acc(spec.acc)
        self.wq = _quantized_weight(linear.weight, self.w_fmt)
        # exact dequantised weights (float32: every MX value fits; tiny subnormals aside)
        self.register_buffer("w_hat", torch.from_numpy(self.wq.dequantize().T.copy())
                             .to(linear.weight.dtype))
        self.bias = (None if linear.bias is None
                     else nn.Parameter(linear.bias.detach().clone(), requires_grad=False))
        self.exact = (self.a_fmt is not None
                      and gemm_supported(self.a_fmt, self.w_fmt, self.in_features))
        self._w_hat64 = None   # float64 (K x N) dequantised weights, made on first use
        self.device = None
        if device is not None:
            self.attach(device)

    def extra_repr(self):
        return (f"{self.in_features}, {self.out_features}, w={self.w_fmt.name}, "
                f"a={self.a_fmt.name if self.a_fmt else None}, acc={self.spec.acc}, "
                f"mode={self.mode}, exact={self.exact}")

    # ---- the device ----
    def attach(self, acc_dev):
        """Run this layer's matmul on ``acc_dev`` (an ``Accelerator``), checking first that
        the device was built for its formats, accumulation and K."""
        if acc_dev is None:
            self.device = None
            return self
        cfg = acc_dev.gemm_config()
        who = self.name or "MXLinear"
        if self.a_fmt is None:
            raise SpecError(f"{who}: weight-only layers cannot run on the device (it "
                            f"multiplies quantised activations); give the layer an 'a' format")
        for what, f, built in (("activation", self.a_fmt, cfg["fmt_a"]),
                               ("weight", self.w_fmt, cfg["fmt_b"])):
            if built is None or golden.formats.get(built).name != f.name:
                raise SpecError(f"{who}: {what} format {f.name} but the device was built for "
                                f"{built}")
        dev_acc = golden.fixed(cfg["acc_width"], cfg["acc_frac"],
                               "saturate" if cfg["saturate"] else "wrap",
                               "rne" if cfg["rne"] else "floor")
        if self.acc != dev_acc:
            raise SpecError(f"{who}: accumulation {self.spec.acc} but the device accumulates "
                            f"in fixed({cfg['acc_width']},{cfg['acc_frac']})"
                            f"{'' if cfg['saturate'] else ' wrapping'}"
                            f"{' rne' if cfg['rne'] else ''}")
        if self.in_features > cfg["max_k"]:
            raise SpecError(f"{who}: K = {self.in_features} exceeds the device's max_k = "
                            f"{cfg['max_k']}")
        self.device = acc_dev
        return self

    # ---- arithmetic ----
    def gemm(self, x2d) -> torch.Tensor:
        """The layer's matmul (no bias) of a 2-D input: golden.gemm's numbers (float32 for
        FP32 accumulation, float64 for fixed), or the float32 dequantised product."""
        if not self.exact:
            xf = x2d.to(self.w_hat.dtype)
            if self.a_fmt is not None:  # golden.quantize(x, a, axis=1).dequantize()
                xf = fastq.dequantized(x2d, self.a_fmt).to(self.w_hat.dtype)
            return xf @ self.w_hat.T
        if (self.device is None and self.mode == "fast" and fastq.supported(self.a_fmt)
                and fast_supported(self.a_fmt, self.w_fmt, self.in_features, self.acc)):
            # activations quantised in torch (fastq), weights dequantised once
            xhat = fastq.dequantized(x2d, self.a_fmt)
            if self._w_hat64 is None:
                self._w_hat64 = torch.from_numpy(self.wq.dequantize())
            if bool(torch.isfinite(xhat).all()) and bool(torch.isfinite(self._w_hat64).all()):
                y = block_accumulate(xhat, self._w_hat64, self.a_fmt.block, self.acc)
                if y is not None:
                    return torch.from_numpy(y)
        xq = golden.quantize(x2d, self.a_fmt, axis=1)
        if self.device is not None:
            y = device_matmul(self.device, xq, self.wq)
        elif self.mode == "reference":
            y = golden.gemm(xq, self.wq, self.acc)
        else:
            y = fast_gemm(xq, self.wq, self.acc)
        return torch.from_numpy(np.ascontiguousarray(y))

    def forward(self, x):
        shape = x.shape
        x2d = x.detach().reshape(-1, shape[-1])
        y = self.gemm(x2d).to(x.dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)


def quantize_model(model: nn.Module, spec, mode: str = "fast", inplace: bool = False):
    """``model`` with every ``nn.Linear`` that the spec quantises swapped for an
    :class:`MXLinear` (a deep copy unless ``inplace``). ``spec``: a :class:`Spec`, a dict
    or a path to a TOML/JSON file."""
    if mode not in ("fast", "reference"):
        raise ValueError(f"mode must be 'fast' or 'reference', not {mode!r}")
    if not isinstance(spec, Spec):
        spec = Spec.from_file(spec) if isinstance(spec, (str, bytes)) or hasattr(
            spec, "__fspath__") else Spec.from_dict(spec)
    if not isinstance(model, nn.Module):
        raise TypeError(f"quantize_model takes a torch.nn.Module, not {type(model).__name__}")
    targets = [(n, m) for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and not isinstance(m, MXLinear)]
    # the layers are built from the original's weights (cached quantisation), then placed
    # in the copy
    new_layers = {}
    for name, lin in targets:
        r = spec.resolve(name)
        if not r.is_float:
            new_layers[name] = MXLinear(lin, r.w, r.a, r.acc, mode=mode, name=name)
    # the copy shares the swapped-out nn.Linear objects with the original (they are
    # replaced right away), so their weights are not copied for nothing
    q = model if inplace else copy.deepcopy(model, {id(lin): lin for name, lin in targets
                                                    if name in new_layers})
    for name, new in new_layers.items():
        parent_name, _, attr = name.rpartition(".")
        parent = q.get_submodule(parent_name) if parent_name else q
        setattr(parent, attr, new)
    q.mx_spec = spec
    return q


def mx_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, MXLinear)]


def run_on_accelerator(qmodel, acc_dev, names=None):
    """Attach ``acc_dev`` to the model's MXLinear layers (all, or those named in
    ``names``); every one is checked first, so a refusal attaches none. ``acc_dev=None``
    detaches. Returns ``qmodel``."""
    layers = [(n, m) for n, m in mx_layers(qmodel) if names is None or n in names]
    if names is not None:
        missing = set(names) - {n for n, _ in layers}
        if missing:
            raise SpecError(f"no MXLinear named {', '.join(sorted(missing))}")
    if not layers:
        raise SpecError("the model has no MXLinear layers (quantize_model first)")
    if acc_dev is not None:
        for n, m in layers:
            m.attach(acc_dev)
            m.device = None
    for n, m in layers:
        m.attach(acc_dev)
    return qmodel
