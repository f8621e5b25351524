"""Shared drivers and strategies of the GEMM tests: the engine (:class:`GemmEngine`) and the
SoC's GEMM unit through the host driver.

- :func:`mx_operands`: a Hypothesis strategy of MX operands drawn as codes (element codes,
  scale codes near 2**0, NaN scales, all-zero blocks), so failures shrink to small cases;
- :func:`run_engine` / :func:`check_engine` / :func:`check_engine_fp32`: a GEMM through a
  :class:`~mxhw.systolic.GemmEngine` and its check against golden;
- :func:`soc_expect`: golden's result for the simulated SoC's ``matmul``;
- :func:`chain_layers` / :func:`run_chain`: a random chain of linear layers (a strategy)
  and its run through the driver's layer API, against ``golden.chain``.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mxhw import golden
from mxhw.golden.arith import FP32, gemm
from mxhw.golden.quantize import MXArray
from mxhw.sim import run, seeded_rng, stream_recv, stream_send
from mxhw.systolic import GemmEngine
from mxhw.systolic.driver import array_beats, tile_order, ws_engine_beats

__all__ = ["chain_layers", "run_chain", "ENGINE_FORMATS", "mx_operands", "gaussian_operand", "run_engine", "check_engine", "check_engine_fp32",
           "engine_beats", "soc_expect"]

#: operand formats of the engine tests (every single-mode MX block format)
ENGINE_FORMATS = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8"]


@st.composite
def mx_operands(draw, fmt, shape, axis, spread=4, nan=True, huge=False):
    """An MX operand of ``shape`` blocked along ``axis``, drawn as codes: every element
    code of the format; scale codes ``2**-spread .. 2**spread`` around 1 (with ``huge``,
    also up to ``2**(spread + 12)``: results that saturate); with ``nan``, NaN scale codes;
    all-zero blocks; for a format with element modes (MXSF), a mode per block (an
    element code reserved in its mode is NaN: :func:`_finite` replaces it)."""
    f = golden.formats.get(fmt)
    k = f.block_size
    sshape = tuple(-(-n // k) if i == axis else n for i, n in enumerate(shape))
    one = int(f.scale.encode(np.array(1.0)))
    hi = spread + (12 if huge else 0)
    scale = st.integers(max(0, one - spread), min(f.scale.n_codes - 1, one + hi))
    if nan and f.scale.nan_code is not None:
        scale = st.one_of(scale, st.just(f.scale.nan_code))
    elements = draw(arrays(np.int64, shape, elements=st.integers(0, f.element.n_codes - 1)))
    scales = draw(arrays(np.int64, sshape, elements=scale))
    zero = draw(arrays(np.bool_, sshape))           # all-zero blocks
    mask = np.repeat(zero, k, axis=axis)[tuple(slice(0, n) for n in shape)]
    elements[mask] = int(np.flatnonzero(f.element.table == 0)[0])
    modes = None
    if f.mode_bits:
        modes = draw(arrays(np.int64, sshape, elements=st.integers(0, len(f.candidates) - 1)))
    return MXArray(f, tuple(shape), axis, elements, scales, modes)


def gaussian_operand(seed, fmt, shape, axis):
    """A fixed MX operand for example tests: Gaussian data, magnitudes spread over
    ``2**-4 .. 2**4``, quantised by golden."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-4, 5, shape))
    return golden.quantize(x, fmt, axis=axis)


def engine_beats(a, b, rows, cols):
    """The output-stationary engine's input: :func:`array_beats` of every tile without
    ``last`` (the engine marks it)."""
    out = []
    for m0, n0 in tile_order(a.shape[0], b.shape[1], rows, cols):
        for beat in array_beats(a, b, rows, cols, m0, n0):
            del beat["last"]
            out.append(beat)
    return out


def run_engine(a, b, rows, cols, acc, seed=0, p_idle=0.0, p_stall=0.0, backend=None, **kw):
    """Run ``a @ b`` on a GemmEngine (``kw``: its other parameters), with random input gaps
    (``p_idle``) and output back-pressure (``p_stall``); checks each row's ``last`` and
    ``done``. Returns (results: (m, n) -> (data, special), telemetry dict)."""
    M, K = a.shape
    N = b.shape[1]
    dut = GemmEngine(rows, cols, a.fmt, b.fmt, M, N, K, acc=acc, **kw)
    D = dut.tile_rows
    tiles = tile_order(M, N, D, cols)
    got, tel = {}, {}
    if dut.array.dataflow == "weight_stationary":
        beats = ws_engine_beats(a, b, rows, cols, D)
    else:
        beats = engine_beats(a, b, rows, cols)

    async def producer(ctx):
        await stream_send(ctx, dut.i, beats, seeded_rng(seed), p_idle)

    async def consumer(ctx):
        out = await stream_recv(ctx, dut.o, len(tiles) * D, seeded_rng(seed + 1), p_stall)
        for t, (m0, n0) in enumerate(tiles):
            for i in range(D):
                r = out[t * D + i]
                assert r.last == (t * D + i == len(out) - 1)
                for j in range(cols):
                    got[m0 + i, n0 + j] = (r.row.data[j], r.row.special[j])
        await ctx.tick()
        assert ctx.get(dut.done)
        for name in ("busy", "stalled", "idle"):
            tel[name] = ctx.get(getattr(dut, name))

    run(dut, producer, consumer, backend=backend)
    return got, tel


def check_engine(a, b, got, acc):
    """Engine results equal golden's raw fixed-point results; special where golden is
    NaN."""
    val, raw = gemm(a, b, acc, return_raw=True)
    for (mm, nn), v in np.ndenumerate(val):
        d, s = got[mm, nn]
        if np.isnan(v):
            assert s, (mm, nn)
        else:
            assert not s and d == raw[mm, nn], (mm, nn, d, raw[mm, nn])


def check_engine_fp32(a, b, got):
    """Engine results (float32 bits) against golden's ``fp32`` mode, bit for bit; NaN where
    golden gives NaN."""
    val = gemm(a, b, FP32).astype(np.float32)
    for (mm, nn), v in np.ndenumerate(val):
        d, s = got[mm, nn]
        if np.isnan(v):
            assert s, (mm, nn)
        else:
            # data is signed(32): its bits are the float32's
            assert not s and d & 0xFFFFFFFF == int(v.view(np.uint32)), (mm, nn, hex(d), v)


def soc_expect(a, b, cfg):
    """golden's ``a @ b`` for a SoC built with ``cfg`` (float operands quantised with its
    formats along K; MXArray operands as they are)."""
    qa = a if isinstance(a, MXArray) else golden.quantize(a, cfg.fmt_a, axis=1)
    qb = b if isinstance(b, MXArray) else golden.quantize(b, cfg.fmt_b, axis=0)
    return golden.gemm(qa, qb, cfg.acc)


@st.composite
def chain_layers(draw, cfg, max_layers=3, max_m=None, dims=None):
    """A random chain for a SoC built with ``cfg`` (an activation path): ``(x, [(w,
    out_fmt), ...])`` with MX operands drawn as codes (:func:`mx_operands`, no NaN
    scales), M up to ``max_m`` (default two row tiles), layer widths from ``dims``
    (default the multiples of 32 up to ``max_k``), 1..``max_layers`` layers; every layer
    but the last re-quantised to ``cfg.out_fmt``, the last to it or None."""
    dims = dims or list(range(32, cfg.max_k + 1, 32))
    M = draw(st.integers(1, max_m or 2 * cfg.rows))
    n = draw(st.integers(1, max_layers))
    widths = [draw(st.sampled_from(dims)) for _ in range(n + 1)]
    last_c = draw(st.booleans())
    if last_c:       # a fixed-point last layer may be any width (padding columns)
        widths[-1] = draw(st.integers(1, widths[-1]))
    x = _finite(draw(mx_operands(cfg.fmt_a, (M, widths[0]), 1, nan=False)))
    layers = []
    for i in range(n):
        w = _finite(draw(mx_operands(cfg.fmt_b, (widths[i], widths[i + 1]), 0, nan=False)))
        layers.append((w, None if (i == n - 1 and last_c) else cfg.out_fmt))
    return x, layers


def _finite(q):
    """``q`` with its NaN and Inf element codes replaced by a code of 0 (the device's
    fixed-point layers take finite values)."""
    from mxhw.systolic.driver import zero_code
    bad = ~np.isfinite(q.element_values())
    q.elements[bad] = zero_code(q.fmt)
    return q


def run_chain(acc, cfg, x, layers, one_program=True):
    """``layers`` after ``x`` on the device ``acc`` (one program, or one run per layer),
    checked against ``golden.chain`` bit for bit (codes and scales of an MX result);
    frees the device tensors. Returns the device's cycle counts."""
    from mxhw.golden.chain import chain
    import contextlib
    hx = acc.upload(x)
    ws = [acc.upload_weights(w) for w, _ in layers]
    handles = [hx]
    with (acc.program() if one_program else contextlib.nullcontext()):
        h = hx
        for hw, (_, out_fmt) in zip(ws, layers):
            h = acc.linear(h, hw, out_fmt=out_fmt)
            handles.append(h)
    want = chain(x, layers, cfg.acc)
    try:
        if isinstance(want, MXArray):
            got = acc.download_mx(h)
            assert np.array_equal(got.elements, want.elements)
            assert np.array_equal(got.scales, want.scales)
            assert (got.modes is None) == (want.modes is None)
            assert got.modes is None or np.array_equal(got.modes, want.modes)
        else:
            assert np.array_equal(acc.download(h), want)
    finally:
        for t in handles + ws:
            if not t.freed and t.kind != "result":
                acc.free(t)
    return acc.last_cycles


def check_instruction_against_spec(acc, ins, caps):
    """Run one program instruction on ``acc``: it runs if ``isa.check`` (the
    specification) finds no error, else the device reports isa.check's error at index 0."""
    import pytest

    from mxhw.soc import isa
    from mxhw.soc.layers import ProgramError
    want = isa.check(ins, caps)
    if want == "none":
        acc.run_program([ins])
        return
    with pytest.raises(ProgramError) as e:
        acc.run_program([ins])
    assert (e.value.error, e.value.pc) == (want, 0)
