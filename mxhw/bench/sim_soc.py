"""The SoC figures of ``python -m mxhw.bench sim``: a program (a matmul through the host
driver) on the simulated SoC on both back ends, a MiniLM-sized layer (``--minilm``) and the
linear layers of a whole MiniLM encoder (``--minilm-encoder``); every result is checked
against golden. Figures only, never pass/fail on time.

* ``soc_pysim_cps`` / ``soc_compiled_cps`` / ``soc_speedup``: ``Accelerator.matmul`` of
  :data:`SOC_PROGRAM` on :func:`soc_config`, on Amaranth's simulator
  (:class:`~mxhw.soc.transport.SimTransport`) and on the compiled model
  (``SimTransport(backend="compiled")``: the host link's bytes moved in bulk through C,
  a whole response per call);
  simulated cycles per wall-clock second of the matmul call (model build excluded).
  ``*_cpu`` variants: per CPU second of this process (less sensitive to other load).
* ``minilm_*``: :func:`run_minilm`.
* ``ffn_*``: :func:`run_minilm_ffn` (``--minilm-ffn``): a MiniLM FFN block's two linear
  layers as one program, MXFP8 activations re-quantised on chip between them.
"""

from __future__ import annotations

import sys
import time

__all__ = ["SOC_PROGRAM", "soc_config", "timed_build", "time_soc_program", "minilm_config",
           "run_minilm", "MINILM_LABEL", "ffn_config", "run_minilm_ffn", "FFN_LABEL",
           "run_minilm_encoder", "ENCODER_LABEL"]

#: the SoC speed program: ``x (M x K) @ w (K x N)`` through ``Accelerator.matmul``
SOC_PROGRAM = (8, 64, 8)


def soc_config():
    """The SoC of the speed program: the default GEMM unit (4x4, MXFP4), 256 scratch words."""
    from ..soc.top import SoCConfig
    return SoCConfig(scratch_words=256)


def timed_build(make):
    """``(wall s, CPU s, was cached)`` of ``make()`` (a compiled model or something with
    one, closed afterwards): CPU time of this process and its children (Yosys, g++), which
    other load on the machine does not inflate as it does wall time."""
    import os
    t = os.times()
    t0 = time.perf_counter()
    made = make()
    wall = time.perf_counter() - t0
    u = os.times()
    cpu = (u.user + u.system + u.children_user + u.children_system
           - t.user - t.system - t.children_user - t.children_system)
    model = getattr(getattr(made, "transport", None), "_model", made)
    cached = not getattr(model, "compiled", True)
    return wall, cpu, cached, made


def _check(got, x, w, cfg, what):
    import numpy as np
    from .. import golden
    ref = golden.gemm(golden.quantize(x, cfg.fmt_a, axis=1),
                      golden.quantize(w, cfg.fmt_b, axis=0), cfg.acc)
    if not np.array_equal(got, ref, equal_nan=True):
        raise RuntimeError(f"{what}: result differs from golden")


def _timed_matmul(acc, x, w):
    """``(result, cycles, wall s, CPU s)`` of ``acc.matmul(x, w)``."""
    c0 = acc.transport.cycles
    t0, p0 = time.perf_counter(), time.process_time()
    got = acc.matmul(x, w)
    wall, cpu = time.perf_counter() - t0, time.process_time() - p0
    return got, acc.transport.cycles - c0, wall, cpu


def _accelerator(cfg, backend):
    """The host driver on the simulated SoC; ``backend``: ``"pysim"`` or ``"compiled"``."""
    from ..soc.driver import Accelerator
    return Accelerator.simulated(cfg, backend=backend)


def time_soc_program(backend, repeats=1, seed=0):
    """The speed program on one back end, ``repeats`` matmuls on one model: returns
    ``(cycles/s wall, cycles/s CPU, cycles of one matmul, (model build wall s, CPU s))``."""
    import numpy as np
    cfg = soc_config()
    m, k, n = SOC_PROGRAM
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    build_wall, build_cpu, _, acc = timed_build(lambda: _accelerator(cfg, backend))
    cycles = wall = cpu = 0
    try:
        for _ in range(repeats):
            got, c, dw, dc = _timed_matmul(acc, x, w)
            _check(got, x, w, cfg, f"SoC program on {backend}")
            cycles, wall, cpu = cycles + c, wall + dw, cpu + dc
    finally:
        acc.close()
    return cycles / wall, cycles / max(cpu, 1e-9), cycles // repeats, (build_wall, build_cpu)


MINILM_LABEL = ("MiniLM-sized layer: x (128 tokens x 384, MXFP8 E4M3) @ W (384 x 1536, "
                "MXFP4), fixed(32, 16) accumulation")


def minilm_config():
    """The simulated SoC for the MiniLM layer: an 8x8 MXFP8 x MXFP4 GEMM unit whose A
    memories hold all 16 row blocks of the 128 tokens (so W streams past them once)."""
    from ..soc.top import SoCConfig
    return SoCConfig(rows=8, cols=8, fmt_a="mxfp8_e4m3", fmt_b="mxfp4_e2m1", max_k=512,
                     a_tiles=16, max_payload=4096, scratch_words=256)


def _busy_cycles(acc):
    from ..soc.regmap import GEMM_REGS, region_address
    return acc.read_words(region_address("regs", GEMM_REGS["BUSY_CYCLES"]), 1)[0]


def run_minilm(tokens=128, d_in=384, d_out=1536, seed=0):
    """One MiniLM-sized layer through the simulated SoC (compiled back end, bulk byte
    exchange) via the host driver, checked against golden. Returns ``(figures, config)``;
    the model build (cached after the first run) is timed apart from the matmul.

    ``minilm_mac_utilisation``: the layer's MACs over ``rows * cols`` MACs per cycle for
    every simulated cycle (1.0: the array never idles); ``minilm_busy_fraction``: the GEMM
    unit's ``BUSY_CYCLES`` counter over the simulated cycles."""
    import numpy as np
    cfg = minilm_config()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((tokens, d_in))
    w = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
    build_wall, build_cpu, _, acc = timed_build(lambda: _accelerator(cfg, "compiled"))
    try:
        busy0 = _busy_cycles(acc)
        got, cycles, seconds, cpu = _timed_matmul(acc, x, w)
        busy = _busy_cycles(acc) - busy0
    finally:
        acc.close()
    _check(got, x, w, cfg, "MiniLM layer on the simulated SoC")
    macs = tokens * d_in * d_out
    figures = {"minilm_seconds": round(seconds, 2), "minilm_cpu_seconds": round(cpu, 2),
               "minilm_cycles": cycles,
               "minilm_cps": round(cycles / seconds, 1),
               "minilm_cps_cpu": round(cycles / max(cpu, 1e-9), 1),
               "minilm_mac_utilisation": round(macs / (cfg.rows * cfg.cols * cycles), 4),
               "minilm_busy_fraction": round(busy / cycles, 4)}
    config = {"minilm_design": MINILM_LABEL + "; mxhw.soc SoC " + repr(cfg)
              + ", bytes fed to rx directly (UART bit timing skipped), SimTransport(backend='compiled')",
              "minilm_model_s": round(build_wall, 2), "minilm_model_cpu_s": round(build_cpu, 2)}
    return figures, config


FFN_LABEL = ("MiniLM FFN block, encoder layer 0 (all-MiniLM-L6-v2 weights and FFN inputs, "
             "offline): x (tokens x 384, MXFP8 E4M3) @ W1 (384 x 1536, MXFP4) re-quantised "
             "on chip to MXFP8 E4M3, @ W2 (1536 x 384, MXFP4), fixed(32, 16); one program "
             "(biases and GELU not on the device)")


def check_ffn_shape(tokens, d_model, d_ff, rows, cols):
    """``ValueError`` (one line) unless the FFN shape is one the MiniLM block and a GEMM
    unit can take: ``d_model`` and ``d_ff`` multiples of 32 up to 384 / 1536, at least one
    token, rows and cols within the SoC's bounds."""
    from ..lib.params import check_int
    check_int("tokens", tokens, 1, 4096)
    check_int("rows", rows, 1, 255)
    check_int("cols", cols, 1, 32)
    for name, v, hi in (("d_model", d_model, 384), ("d_ff", d_ff, 1536)):
        check_int(name, v, 32, hi)
        if v % 32:
            raise ValueError(f"{name} must be a multiple of 32 (the block size), not {v}")


def ffn_config(tokens=128, d_model=384, d_ff=1536, rows=16, cols=16):
    """The simulated SoC for the FFN program: an output-stationary MXFP8 E4M3 x MXFP4
    unit with the activation path, memories for both layers' weights, ``x`` and ``h``
    resident, and the ``tokens x d_model`` fixed-point result in its C tiles."""
    from ..soc.top import SoCConfig
    check_ffn_shape(tokens, d_model, d_ff, rows, cols)
    from ..soc.unit import pow2
    mt = -(-tokens // rows)
    return SoCConfig(rows=rows, cols=cols, fmt_a="mxfp8_e4m3", fmt_b="mxfp4_e2m1",
                     max_k=pow2(max(d_model, d_ff, 32)), a_tiles=pow2(2 * mt),
                     b_tiles=pow2(-(-d_ff // cols) + -(-d_model // cols)),
                     c_tiles=pow2(mt * -(-d_model // cols)), prog_words=8,
                     out_fmt="mxfp8_e4m3", max_payload=4096, scratch_words=256)


def run_minilm_ffn(tokens=128, d_model=384, d_ff=1536, rows=16, cols=16,
                   backend="compiled"):
    """The FFN block's two linear layers (:mod:`mxhw.model.ffn`; ``d_model``/``d_ff``
    below 384/1536 take the leading slice of the weights) as one program on the simulated
    SoC (``backend`` as :func:`_accelerator`), checked against ``mxhw.model``'s
    emulation (bit-exact to golden). Returns ``(figures, config)``.

    ``ffn_cycles``: the program's cycles (PROG_CYCLES: both layers, the on-chip
    re-quantisation included, host uploads excluded); ``ffn_l1_cycles`` /
    ``ffn_l2_cycles`` per instruction; ``ffn_mac_utilisation``: the MACs over ``rows *
    cols`` per program cycle; ``ffn_seconds``: wall time of uploads, program and
    download."""
    import numpy as np
    from ..model.ffn import ffn_emulated, ffn_inputs, minilm_ffn, run_ffn_program
    from ..model.metrics import default_corpus, load_minilm
    cfg = ffn_config(tokens, d_model, d_ff, rows, cols)
    model = load_minilm()
    w1, w2 = minilm_ffn(0, model)
    texts, x = default_corpus(), np.zeros((0, 384))
    for i in range(0, len(texts), 8):
        x = np.concatenate([x, ffn_inputs(texts[i:i + 8], 0, model)])
        if len(x) >= tokens:
            break
    x, w1, w2 = x[:tokens, :d_model], w1[:d_model, :d_ff], w2[:d_ff, :d_model]
    want = ffn_emulated(x, w1, w2, cfg.fmt_a, cfg.fmt_b, cfg.acc)
    build_wall, build_cpu, _, acc = timed_build(lambda: _accelerator(cfg, backend))
    try:
        t0, p0 = time.perf_counter(), time.process_time()
        got, cyc = run_ffn_program(acc, x, w1, w2)
        wall, cpu = time.perf_counter() - t0, time.process_time() - p0
    finally:
        acc.close()
    if not np.array_equal(got, want):
        raise RuntimeError("FFN program on the simulated SoC: result differs from the "
                           "emulation (golden)")
    macs = tokens * d_model * d_ff * 2
    total = cyc["total"]
    figures = {"ffn_cycles": total, "ffn_l1_cycles": cyc["per_instruction"][0],
               "ffn_l2_cycles": cyc["per_instruction"][1],
               "ffn_mac_utilisation": round(macs / (cfg.rows * cfg.cols * total), 4),
               "ffn_seconds": round(wall, 2), "ffn_cpu_seconds": round(cpu, 2)}
    config = {"ffn_design": (f"{FFN_LABEL}; {tokens} tokens, d_model {d_model}, d_ff "
                             f"{d_ff}; mxhw.soc SoC {cfg!r} on {backend}"),
              "ffn_model_s": round(build_wall, 2), "ffn_model_cpu_s": round(build_cpu, 2)}
    return figures, config


ENCODER_LABEL = ("all-MiniLM-L6-v2 encoder, all six layers' linear layers (real weights "
                 "and inputs, offline): Q, K, V, O (384 -> 384) each one linear on the "
                 "device, x (MXFP8 E4M3) @ W (MXFP4), fixed(32, 16) results downloaded; the "
                 "FFN (384 -> 1536 -> 384) as one program, MXFP8 re-quantised on chip "
                 "between its layers (biases, softmax, GELU, layer norms on the host's float "
                 "model, which supplies every layer's input)")


def _real_inputs(tokens, model, collect):
    """``collect(texts, model)`` over the default corpus, 8 sentences at a time, until
    every entry has ``tokens`` rows; returns the entries cut to ``tokens`` rows."""
    import numpy as np
    from ..model.metrics import default_corpus
    texts, got = default_corpus(), {}
    for i in range(0, len(texts), 8):
        for k, v in collect(texts[i:i + 8], model).items():
            got[k] = v if k not in got else np.concatenate([got[k], v])
        if min(len(v) for v in got.values()) >= tokens:
            break
    return {k: v[:tokens] for k, v in got.items()}


def run_minilm_encoder(tokens=128, layers=6, rows=16, cols=16, backend="compiled",
                       progress=False):
    """The linear layers of MiniLM's first ``layers`` encoder layers (:data:`ENCODER_LABEL`)
    on one simulated SoC (:func:`ffn_config`), each result checked against ``mxhw.model``'s
    emulation (bit-exact to golden). Returns ``(figures, config)``.

    Per layer ``L``: ``encoder_L<L>_cycles`` (simulated cycles of the layer, uploads and
    downloads included), ``encoder_L<L>_compute_cycles`` (the programs' PROG_CYCLES),
    ``encoder_L<L>_mac_utilisation`` (MACs over ``rows * cols`` per compute cycle),
    ``encoder_L<L>_seconds``; overall: ``encoder_seconds`` (wall, model build excluded),
    ``encoder_cycles``, ``encoder_compute_cycles``, ``encoder_mac_utilisation`` (over the
    compute cycles) and ``encoder_link_utilisation`` (over every simulated cycle).
    ``progress``: a line per layer on stderr."""
    import numpy as np
    from ..lib.params import check_int
    from ..model.encoder import ATTENTION, encoder_inputs, encoder_linears
    from ..model.ffn import ffn_emulated, run_ffn_program
    from ..model.metrics import load_minilm
    from ..model.quant import fast_gemm
    from .. import golden
    check_int("layers", layers, 1, 6)
    cfg = ffn_config(tokens, 384, 1536, rows, cols)
    model = load_minilm()
    inputs = _real_inputs(tokens, model, encoder_inputs)
    build_wall, build_cpu, _, acc = timed_build(lambda: _accelerator(cfg, backend))
    figures, totals = {}, dict(cycles=0, compute=0, macs=0, seconds=0.0, cpu=0.0)
    try:
        for layer in range(layers):
            ws = encoder_linears(layer, model)
            c0, t0, p0 = acc.transport.cycles, time.perf_counter(), time.process_time()
            compute = macs = 0
            for name in ATTENTION:
                x, w = inputs[(layer, name)], ws[name]
                held = [acc.upload(x), acc.upload_weights(w)]
                try:
                    got = acc.download(acc.linear(held[0], held[1], out_fmt=None))
                finally:
                    for t in held:
                        acc.free(t)
                compute += acc.last_cycles["total"]
                want = fast_gemm(golden.quantize(x, cfg.fmt_a, axis=1),
                                 golden.quantize(w, cfg.fmt_b, axis=0), cfg.acc)
                if not np.array_equal(got, np.asarray(want, dtype=np.float64)):
                    raise RuntimeError(f"encoder layer {layer} {name}: result differs from "
                                       f"the emulation (golden)")
                macs += x.shape[0] * w.shape[0] * w.shape[1]
            x, w1, w2 = inputs[(layer, "FFN_in")], ws["FFN_in"], ws["FFN_out"]
            got, cyc = run_ffn_program(acc, x, w1, w2)
            if not np.array_equal(got, ffn_emulated(x, w1, w2, cfg.fmt_a, cfg.fmt_b, cfg.acc)):
                raise RuntimeError(f"encoder layer {layer} FFN: result differs from the "
                                   f"emulation (golden)")
            compute += cyc["total"]
            macs += 2 * x.shape[0] * w1.shape[0] * w1.shape[1]
            cycles = acc.transport.cycles - c0
            wall, cpu = time.perf_counter() - t0, time.process_time() - p0
            figures.update({f"encoder_L{layer}_cycles": cycles,
                            f"encoder_L{layer}_compute_cycles": compute,
                            f"encoder_L{layer}_mac_utilisation":
                                round(macs / (cfg.rows * cfg.cols * compute), 4),
                            f"encoder_L{layer}_seconds": round(wall, 2)})
            for k, v in (("cycles", cycles), ("compute", compute), ("macs", macs),
                         ("seconds", wall), ("cpu", cpu)):
                totals[k] += v
            if progress:
                print(f"encoder layer {layer}: {cycles} cycles ({compute} compute), "
                      f"{wall:.1f} s wall, {cpu:.1f} s CPU, equal to the emulation",
                      file=sys.stderr, flush=True)
    finally:
        acc.close()
    lanes = cfg.rows * cfg.cols
    figures.update({
        "encoder_layers": layers,
        "encoder_seconds": round(totals["seconds"], 2),
        "encoder_cpu_seconds": round(totals["cpu"], 2),
        "encoder_cycles": totals["cycles"],
        "encoder_compute_cycles": totals["compute"],
        "encoder_cps": round(totals["cycles"] / totals["seconds"], 1),
        "encoder_mac_utilisation": round(totals["macs"] / (lanes * totals["compute"]), 4),
        "encoder_link_utilisation": round(totals["macs"] / (lanes * totals["cycles"]), 4)})
    engine = getattr(acc.transport, "_model", None)
    config = {"encoder_design": (f"{ENCODER_LABEL}; {tokens} tokens, {layers} layers; "
                                 f"mxhw.soc SoC {cfg!r} on {backend}"
                                 + (f" ({engine.engine})" if engine is not None else "")),
              "encoder_model_s": round(build_wall, 2),
              "encoder_model_cpu_s": round(build_cpu, 2)}
    return figures, config
