"""Quantised linear layers whose forward is the accelerator's arithmetic, bit for bit.

:class:`MXLinear` computes ``y = x @ W.T + b`` with W (and optionally x) quantised by
golden, blocks along the input features (K):

* weights and activations both in formats ``golden.gemm`` multiplies (power-of-two or
  binary32 scales, equal blocks along K): the result is ``golden.gemm(xq, wq, acc)``
  exactly ("bit-exact to the device"); ``mode="reference"`` calls golden.gemm, ``"fast"``
  computes the same numbers vectorised (see :func:`fast_gemm`);
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
from ..golden.arith import element_ints
from .spec import LayerSpec, Spec, SpecError, parse_acc

__all__ = ["MXLinear", "quantize_model", "fast_gemm", "gemm_supported", "run_on_accelerator",
           "mx_layers"]

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


def _pow2_scales(mx):
    return mx.fmt.scale.kind in ("pow2", "int")


def fast_gemm(xq: golden.MXArray, wq: golden.MXArray, acc) -> np.ndarray:
    """``golden.gemm(xq, wq, acc)``, bit for bit, vectorised (FP32 or fixed accumulation).

    Per block pair the exact dot product of the element integers is a float64 batched
    matmul, exact because every partial sum is an integer below 2**53 (checked); the two
    power-of-two scales multiply it exactly; then golden's rule runs over the blocks in
    order: FP32 -- each block rounded RNE to float32, summed in float32 from +0.0; fixed
    -- each block scaled by 2**F, floored (or RNE), added with saturation (exact in float64
    for widths <= 52) or wrap (int64). Anything outside these proofs (binary32 scales, NaN
    or Inf, EXACT accumulation, too wide a register) falls back to golden.gemm.
    """
    acc = parse_acc(acc)
    M, K = xq.shape
    N = wq.shape[1]
    if (acc.mode == "exact" or not (_pow2_scales(xq) and _pow2_scales(wq))
            or (acc.mode == "fixed" and (acc.width > 52 if acc.overflow == "saturate"
                                         else acc.width > 62))):
        return golden.gemm(xq, wq, acc)
    k = xq.fmt.block
    if k != wq.fmt.block or not isinstance(k, int) or K % k:
        return golden.gemm(xq, wq, acc)  # golden raises its own error
    nb = K // k
    ia, la, bada = element_ints(xq)
    ib, lb, badb = element_ints(wq)
    sa, sb = xq.scale_values(), wq.scale_values()
    if (bada.any() or badb.any() or not np.isfinite(sa).all() or not np.isfinite(sb).all()
            or int(np.abs(ia).max(initial=0)) * int(np.abs(ib).max(initial=0)) * k
            >= _EXACT_F64):
        return golden.gemm(xq, wq, acc)
    # pre-scaling by the (power-of-two) block scales is exact, and every product in a block
    # then carries the same factor, so each block sum is S * 2**E exactly
    B = (torch.from_numpy(ib.astype(np.float64)).reshape(nb, k, N)
         * torch.from_numpy(np.ldexp(sb, lb)).reshape(nb, 1, N))
    A_all = (torch.from_numpy(ia.astype(np.float64)).reshape(M, nb, k)
             * torch.from_numpy(np.ldexp(sa, la)).reshape(M, nb, 1)).permute(1, 0, 2)
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
                return golden.gemm(xq, wq, acc)
            Ti = T.to(torch.int64)
            r = torch.zeros(V.shape[1:], dtype=torch.int64)
            for j in range(nb):
                r = torch.remainder(r + Ti[j] - lo, 1 << W) + lo
            r = r.to(torch.float64)
        out[m0:m0 + rows] = torch.ldexp(r, torch.tensor(float(-F), dtype=torch.float64)).numpy()
    return out


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
            if self.a_fmt is not None:
                xq = golden.quantize(x2d, self.a_fmt, axis=1)
                xf = torch.from_numpy(xq.dequantize()).to(self.w_hat.dtype)
            return xf @ self.w_hat.T
        xq = golden.quantize(x2d, self.a_fmt, axis=1)
        if self.device is not None:
            y = self.device.matmul(xq, self.wq)
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
    q = model if inplace else copy.deepcopy(model)
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
