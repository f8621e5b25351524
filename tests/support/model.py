"""Strategies and small models for the mxhw.model tests."""

import numpy as np
import torch
from hypothesis import strategies as st

from mxhw import golden

# formats golden.gemm multiplies with power-of-two scales, 1-D blocks of 32 (fast path)
POW2_FORMATS = [n for n in ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2",
                            "mxfp4_e2m1", "mxint8", "mxint4", "mxint2", "mxint8_mase",
                            "mxint4_mase", "mxsf"]]
# golden.gemm formats the fast path hands to golden (binary32 per-tensor scales)
PT_FORMATS = ["fp8_e4m3_pt", "fp8_e5m2_pt"]
ACCS = ["fp32", "fixed(32,16)", "fixed(16,4)", "fixed(24,30)", "fixed(12,-2)"]


@st.composite
def operands(draw, formats=POW2_FORMATS, max_m=5, max_blocks=3, max_n=5):
    """(x (M x K) float64, W (N x K) float64, a_fmt, w_fmt) with K a multiple of 32 and
    values over a wide dynamic range (exercising saturation and tiny block sums)."""
    a = draw(st.sampled_from(formats))
    w = draw(st.sampled_from(formats))
    M = draw(st.integers(1, max_m))
    N = draw(st.integers(1, max_n))
    K = 32 * draw(st.integers(1, max_blocks))
    seed = draw(st.integers(0, 2**32 - 1))
    spread = draw(st.sampled_from([0.0, 2.0, 8.0]))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((M, K)) * np.exp2(rng.standard_normal((M, 1)) * spread)
    W = rng.standard_normal((N, K)) * np.exp2(rng.standard_normal((N, 1)) * spread)
    if draw(st.booleans()):
        x[:, : 32] = 0.0  # an all-zero block
    return x, W, a, w


def linear_from(W, bias=None, dtype=torch.float64):
    """An nn.Linear holding exactly ``W`` (N x K) and ``bias`` (float64 by default)."""
    N, K = W.shape
    lin = torch.nn.Linear(K, N, bias=bias is not None, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W).to(dtype))
        if bias is not None:
            lin.bias.copy_(torch.from_numpy(bias).to(dtype))
    return lin


class TinyMLP(torch.nn.Module):
    """32 -> h -> n with K = 32 for both layers (one MX block), ReLU between."""

    def __init__(self, h=32, n=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc1 = torch.nn.Linear(32, h)
        self.fc2 = torch.nn.Linear(h, n)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def golden_linear(x, W, a, w, acc, bias=None):
    """The expected MXLinear output from golden alone (float32 model: cast, then bias)."""
    from mxhw.model.spec import parse_acc
    xq = golden.quantize(np.asarray(x, np.float64), a, axis=1)
    wq = golden.quantize(np.asarray(W, np.float64).T, w, axis=0)
    y = torch.from_numpy(np.ascontiguousarray(golden.gemm(xq, wq, parse_acc(acc))))
    return y


# activation formats fastq quantises itself (and a few it hands to golden)
FASTQ_FORMATS = POW2_FORMATS + ["mxint3", "mxint6_mase", "mxfp8_e4m3_ceil", "mxfp4_e2m1_rceil",
                                 "mxint8_even", "fp8_e4m3_pt", "bitmod_fp4"]


@st.composite
def activations(draw, max_m=6, max_blocks=3):
    """(x (M x K) float64, fmt): rows over a wide dynamic range with drawn specials --
    exact element-grid midpoints (ties), zeros and negative zeros, float32 subnormals,
    huge values (scale clamping), all-zero blocks."""
    fmt = draw(st.sampled_from(FASTQ_FORMATS))
    M = draw(st.integers(1, max_m))
    K = 32 * draw(st.integers(1, max_blocks))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spread = draw(st.sampled_from([0.0, 3.0, 40.0]))
    x = rng.standard_normal((M, K)) * np.exp2(np.round(rng.standard_normal((M, 1)) * spread))
    kind = draw(st.sampled_from(["plain", "ties", "specials"]))
    if kind == "ties":
        # values on the midpoints of the element grid, times the block's power of two
        e = golden.formats.get(fmt).candidates[0]
        v = np.unique(e.finite_values)
        mids = (v[:-1] + v[1:]) / 2
        pick = rng.integers(0, mids.size, size=(M, K))
        x = mids[pick] * np.exp2(rng.integers(-3, 4, size=(M, 1)))
    elif kind == "specials":
        flat = x.reshape(-1)
        idx = rng.integers(0, flat.size, size=max(1, flat.size // 8))
        flat[idx] = rng.choice([0.0, -0.0, 1e-40, -1e-45, 3e38, -3e38, 2.0**-130], idx.size)
    if draw(st.booleans()):
        x[:, :32] = 0.0
    return x.astype(np.float32).astype(np.float64), fmt
