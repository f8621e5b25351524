"""``python -m mxhw.model eval|search|device``: MiniLM accuracy of block formats;
mixed-precision search under a budget; one encoder layer on the simulated SoC. See
docs/model.md."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .spec import Spec, SpecError, spec_format

EPILOG = "Errors print one line and exit with status 2."


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _formats(s, what):
    names = [f.strip() for f in s.split(",") if f.strip()]
    if not names:
        raise SpecError(f"{what}: give at least one format")
    for n in names:
        spec_format(n, f"{what}: ")
    return names


def _texts(path):
    from .metrics import default_corpus, read_texts
    return read_texts(path) if path else default_corpus()


def _check_model(m):
    if m != "minilm":
        raise SpecError(f"--model: only 'minilm' on the command line (other nn.Modules "
                        f"through the Python API), not {m!r}")


def cmd_eval(args):
    _check_model(args.model)
    fmts = _formats(args.formats, "--formats")
    acts = _formats(args.acts, "--acts")[0] if args.acts else None
    from .spec import parse_acc
    parse_acc(args.acc)
    texts = _texts(args.text)
    from .metrics import evaluate, load_minilm
    load_minilm()
    out = {}
    print(f"all-MiniLM-L6-v2, {len(texts)} sentences, activations {acts or 'float'}, "
          f"acc {args.acc}")
    print(f"{'weights':<14} {'bits/w':>7} {'cos_mean':>9} {'cos_min':>9} {'top1':>6} {'s':>6} {'cpu s':>6}")
    for f in fmts:
        t, c = time.time(), time.process_time()
        r = evaluate("minilm", Spec.uniform(f, acts, args.acc), texts=texts)
        r["seconds"] = round(time.time() - t, 2)
        r["cpu_seconds"] = round(time.process_time() - c, 2)
        out[f] = r
        print(f"{f:<14} {r['bits_per_weight']:7.3f} {r['cos_mean']:9.5f} {r['cos_min']:9.5f} "
              f"{r['top1_agree']:6.3f} {r['seconds']:6.1f} {r['cpu_seconds']:6.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": "minilm", "acts": acts, "acc": args.acc,
                       "n_texts": len(texts), "formats": out}, fh, indent=2)
    return 0


def cmd_search(args):
    _check_model(args.model)
    cands = _formats(args.candidates, "--candidates")
    acts = _formats(args.acts, "--acts")[0] if args.acts else None
    if (args.budget_bits is None) == (args.budget_luts is None):
        raise SpecError("give exactly one of --budget-bits and --budget-luts")
    b = args.budget_bits if args.budget_bits is not None else args.budget_luts
    if not b > 0:
        raise SpecError(f"the budget must be positive, not {b}")
    texts = _texts(args.text)
    calib = texts[:args.calib] if args.calib else texts
    from .metrics import evaluate, load_minilm
    from .mixed import plot_pareto, search, sensitivity, linear_groups
    model = load_minilm()
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.verbose else None
    groups = linear_groups(model, args.group)
    # sensitivities on the calibration subset, the search's evaluations on every text
    sens = sensitivity(lambda sp: evaluate("minilm", sp, texts=calib), model, cands, groups,
                       a=acts, acc=args.acc, progress=log)
    res = search(lambda sp: evaluate("minilm", sp, texts=texts), model, cands,
                 budget_bits=args.budget_bits, budget_luts=args.budget_luts, by=args.group,
                 a=acts, acc=args.acc, progress=log, sens=sens)
    print(f"search: {len(texts)} sentences, groups by {args.group}, budget "
          f"{b} {'bits/weight' if args.budget_bits is not None else 'LUT/MAC'}")
    print(f"{'group':<48} {'format':<12} {'layers':>6}")
    for g, f in res["assignment"].items():
        print(f"{g:<48} {f:<12} {len(res['groups'][g]):>6}")
    m = res["metrics"]
    print(f"result ({res['source']}): {res['bits']:.3f} bits/weight, {res['luts']:.1f} "
          f"LUT/MAC est., cos_mean {m['cos_mean']:.5f}, cos_min {m['cos_min']:.5f}, "
          f"top1 {m['top1_agree']:.3f}")
    print("uniform formats:")
    for f, u in res["uniform"].items():
        um = u["metrics"]
        print(f"  {f:<14} {u['bits']:.3f} bits/weight, {u['luts']:.1f} LUT/MAC, cos_mean "
              f"{um['cos_mean']:.5f}, top1 {um['top1_agree']:.3f}"
              f"{'' if u['within'] else '  (over budget)'}")
    if args.out:
        res["spec"].save(args.out)
        print(f"spec written to {args.out}")
    if args.plot:
        plot_pareto(res, args.plot)
        print(f"Pareto plot written to {args.plot}")
    return 0


def cmd_device(args):
    _check_model(args.model)
    if not 1 <= args.sentences <= 256:
        raise SpecError(f"--sentences must be in 1..256, not {args.sentences}")
    if args.rows < 1:
        raise SpecError(f"--rows must be at least 1 (the SoC needs a GEMM unit), not "
                        f"{args.rows}")
    texts = _texts(args.text)[:args.sentences]
    from mxhw.soc.driver import Accelerator
    from mxhw.soc.top import SoCConfig
    from .device import run_layer_on_device
    try:
        cfg = SoCConfig(rows=args.rows, cols=args.cols, fmt_a=args.fmt_a, fmt_b=args.fmt_b,
                        max_k=args.max_k)
        acc = Accelerator.simulated(cfg, backend=args.backend)
    except (ValueError, TypeError) as e:
        raise SpecError(f"SoC configuration: {e}") from None
    r = run_layer_on_device(acc, texts, layer=args.layer)
    print(f"MiniLM encoder layer {args.layer} on the simulated SoC ({args.backend}, "
          f"{args.rows}x{args.cols}, a {cfg.fmt_a}, w {cfg.fmt_b}, max_k {cfg.max_k}):")
    print(f"  {r['sentences']} sentence(s), {r['tokens']} token rows, {r['matmuls']} matmuls, "
          f"{r['macs']} MACs on the device")
    print(f"  embeddings equal to the emulation bit for bit: {'yes' if r['equal'] else 'NO'} "
          f"(max |diff| {r['max_abs_diff']:.3g})")
    print(f"  seconds: emulation {r['seconds_emulated']}, with the device "
          f"{r['seconds_device']}")
    return 0 if r["equal"] else 1


def main(argv=None):
    p = _Parser(prog="python -m mxhw.model", description=__doc__, epilog=EPILOG)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    e = sub.add_parser("eval", help="uniform formats on MiniLM vs the float model")
    e.add_argument("--model", default="minilm")
    e.add_argument("--formats", required=True, help="comma-separated weight block formats")
    e.add_argument("--acts", help="activation block format (default: float activations)")
    e.add_argument("--acc", default="fp32", help="fp32 or fixed(W,F) (default fp32)")
    e.add_argument("--text", help="sentences, one a line (default: the shipped corpus)")
    e.add_argument("--json", help="write the results here")
    s = sub.add_parser("search", help="mixed-precision search under a budget")
    s.add_argument("--model", default="minilm")
    s.add_argument("--candidates", required=True, help="comma-separated weight formats")
    s.add_argument("--budget-bits", type=float, help="average bits per weight")
    s.add_argument("--budget-luts", type=float, help="average estimated LUT per MAC")
    s.add_argument("--acts", help="activation block format for every quantised layer")
    s.add_argument("--acc", default="fp32")
    s.add_argument("--group", default="role", choices=["role", "layer"],
                   help="search granularity (default: role = same layer across blocks)")
    s.add_argument("--calib", type=int, default=64,
                   help="sentences for the sensitivity pass (0: all; default 64)")
    s.add_argument("--text")
    s.add_argument("--out", help="write the assignment as a spec (.toml or .json)")
    s.add_argument("--plot", help="write the Pareto plot (PNG)")
    s.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    d = sub.add_parser("device", help="one encoder layer's linear layers on the simulated "
                                      "SoC, compared with the emulation")
    d.add_argument("--model", default="minilm")
    d.add_argument("--layer", type=int, default=0, help="encoder layer (default 0)")
    d.add_argument("--rows", type=int, default=4)
    d.add_argument("--cols", type=int, default=4)
    d.add_argument("--max-k", type=int, default=2048,
                   help="the SoC's max_k (MiniLM's FFN output needs K = 1536)")
    d.add_argument("--fmt-a", default="mxfp8_e4m3", help="activation format of the SoC")
    d.add_argument("--fmt-b", default="mxfp4_e2m1", help="weight format of the SoC")
    d.add_argument("--backend", default="compiled", choices=["pysim", "compiled"])
    d.add_argument("--sentences", type=int, default=1, help="how many sentences (default 1)")
    d.add_argument("--text")
    args = p.parse_args(argv)
    try:
        return {"eval": cmd_eval, "search": cmd_search, "device": cmd_device}[args.cmd](args)
    except (SpecError, KeyError, OSError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"python -m mxhw.model: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
