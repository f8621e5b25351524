"""``python -m mxhw.dse``: design-space exploration over array configurations and
per-layer format specs, each point's PPA and model metric, as tasks on Dask distributed.

A space file (TOML or JSON, :mod:`mxhw.dse_space`, schema in ``docs/dse.md``) spans
hardware configurations (array size, dataflow, operand formats) times format specs; every
point gets the PPA suite's figures of its array (:mod:`mxhw.bench.ppa`, cached by RTL
hash) and a metric of its spec (:func:`mxhw.model.evaluate`, or golden SQNR). Tasks run on
a Dask ``LocalCluster`` (2 worker processes), an existing scheduler (``--scheduler``) or in
this process (``--serial``); results go to ``DIR/dse.sqlite`` (:mod:`mxhw.dse_db`) and are
exported to ``dse.csv``, ``dse.json`` and ``pareto.png``. A re-run skips finished points.

Python API: :func:`run_sweep` with injectable ``ppa(point)`` and ``metric(point)``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import numbers
import sys
import time
from pathlib import Path

from . import dse_db as db
from .dse_space import (SpaceError, canonical, check_space, hw_key, load_space, point_key,
                        point_name, points, spec_key)

__all__ = ["DSEError", "SpaceError", "run_sweep", "suite_ppa", "model_metric",
           "sqnr_metric", "array_config", "DEFAULT_OBJECTIVE", "main"]


class DSEError(RuntimeError):
    """A sweep that cannot run (one-line message)."""


#: The objective (the metric value on the Pareto plot's y axis) of each built-in metric.
DEFAULT_OBJECTIVE = {"model": "cos_mean", "sqnr": "sqnr_db"}


# ---- the default callables (module-level: Dask pickles them by reference) ------------

def _make_array(rows, cols, fmt_a, fmt_b, dataflow, acc):
    from . import golden
    from .systolic import SystolicArray
    return SystolicArray(rows, cols, fmt_a, fmt_b, dataflow=dataflow,
                         acc=golden.arith.fixed(*acc))


def array_config(point):
    """The PPA suite's :class:`~mxhw.bench.ppa.Config` of the point's array: the
    registry's own (``array_<fmt>_<n>x<n>``, sharing its cache entries) when the point is
    one of the suite's arrays, else a ``dse_array_...`` configuration."""
    from .bench.ppa import ARRAY_ACC, CONFIGS, Config, maker
    h = point["hw"]
    r, c, fa, fb, df, acc = (h["rows"], h["cols"], h["fmt_a"], h["fmt_b"], h["dataflow"],
                             tuple(h["acc"]))
    suite = f"array_{fa}_{r}x{c}"
    if (fa == fb and r == c and df == "output_stationary" and acc == tuple(ARRAY_ACC)
            and suite in CONFIGS):
        return CONFIGS[suite]
    fmts = fa if fa == fb else f"{fa}_x_{fb}"
    tag = "os" if df == "output_stationary" else "ws"
    name = f"dse_array_{fmts}_{r}x{c}_{tag}_acc{acc[0]}_{acc[1]}"
    return Config(name, "array", maker(_make_array, r, c, fa, fb, df, acc), r * c,
                  {"format_a": fa, "format_b": fb, "rows": r, "cols": c, "dataflow": df,
                   "acc": f"fixed{acc}"})


def suite_ppa(point, cache=None):
    """The PPA suite's ECP5 figures of the point's array (:func:`array_config`,
    :func:`mxhw.bench.ppa.run_config`, cached by RTL hash): ``luts`` (LUT4-eq.), ``ffs``,
    ``dsps``, ``brams``, ``fmax_mhz`` (absent when the array does not fit), ``fits``,
    ``nodsp_luts`` (LUT-only synthesis, when the array uses DSPs), ``macs_per_cycle``,
    ``rtl_hash``, ``tool_versions``, ``cached``."""
    from .bench.ppa import run_config, tool_versions
    cfg = array_config(point)
    r = run_config(cfg, cache, targets=("ecp5",))
    if r["errors"]:
        raise RuntimeError("; ".join(f"{t}: {m.splitlines()[0]}"
                                     for t, m in r["errors"].items()))
    e = r["ecp5"]
    out = {k: e[k] for k in ("luts", "ffs", "dsps", "brams", "ccu2c") if k in e}
    out["fits"] = e.get("fits", True)
    if "fmax_mhz" in e:
        out["fmax_mhz"] = e["fmax_mhz"]
    cached = dict(r["cached"])
    if e.get("dsps"):
        x = run_config(cfg, cache, targets=("ecp5_nodsp",))
        if x["errors"]:
            raise RuntimeError("; ".join(f"{t}: {m.splitlines()[0]}"
                                         for t, m in x["errors"].items()))
        out["nodsp_luts"] = x["ecp5_nodsp"]["luts"]
        cached.update(x["cached"])
    out.update({"macs_per_cycle": cfg.macs_per_cycle, "config": cfg.name,
                "rtl_hash": r["rtl_hash"], "tool_versions": tool_versions(),
                "cached": all(cached.values())})
    return out


def model_metric(point):
    """:func:`mxhw.model.evaluate` of the point's model and spec: ``bits_per_weight``,
    ``cos_mean``, ``cos_min``, ``top1_agree``."""
    try:
        from . import model
    except ImportError as e:
        raise RuntimeError(f"metric 'model' needs mxhw.model ({e})") from None
    spec = model.Spec.from_dict(point["spec"])
    return dict(model.evaluate(model=point["model"], spec=spec, texts=None))


#: The synthetic tensors of :func:`sqnr_metric` (:func:`mxhw.golden.compare.synthetic`).
SQNR_SEED, SQNR_SHAPE = 0, (64, 256)


def sqnr_metric(point):
    """Golden SQNR (dB) of the spec's default weight format on the synthetic tensors of
    :func:`mxhw.golden.compare.synthetic` (seed :data:`SQNR_SEED`, :data:`SQNR_SHAPE`):
    ``bits_per_weight``, ``sqnr_db`` (Gaussian), ``sqnr_outliers_db`` (Student-t with
    outlier columns). A cheap stand-in for the model metric (per-layer patterns and the
    activation format are not used)."""
    from .golden import compare
    fmt = point["spec"]["default"]["w"]
    t = compare.synthetic(SQNR_SEED, SQNR_SHAPE)
    bpv, g, _ = compare.evaluate(t["gaussian"], fmt)
    _, o, _ = compare.evaluate(t["student_t_outliers"], fmt)
    return {"bits_per_weight": bpv, "sqnr_db": g, "sqnr_outliers_db": o}


# ---- tasks -------------------------------------------------------------------------------

def _now():
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _first_line(e):
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""


def _task(kind, fn, point):
    """Run ``fn(point)`` (a worker's task): ``{"value", "error", "started", "finished",
    "seconds"}``; an exception becomes a one-line ``error``."""
    started, t0 = _now(), time.monotonic()
    value = error = None
    try:
        value = fn(point)
        if not isinstance(value, dict):
            raise TypeError(f"{kind} returned {type(value).__name__}, not a dict")
        canonical(value)        # JSON-serialisable (raises TypeError)
        if kind == "ppa" and not isinstance(value.get("luts"), numbers.Real):
            raise ValueError(f"ppa returned no number 'luts' ({value.get('luts')!r})")
    except Exception as e:      # a failed point, not a failed sweep
        error = f"{kind}: {type(e).__name__}: {_first_line(e)}".rstrip(": ")
        value = None
    return {"value": value, "error": error, "started": started, "finished": _now(),
            "seconds": round(time.monotonic() - t0, 3)}


def _objective(metric_value, name):
    """The objective from a metric dict: ``name``, or its first real number."""
    if metric_value is None:
        return None, None
    if name is None:
        for k, v in metric_value.items():
            if isinstance(v, numbers.Real) and not isinstance(v, bool):
                return float(v), None
        return None, "metric: no numeric value for the objective"
    v = metric_value.get(name)
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        return None, f"metric: no number {name!r} (the objective) in {sorted(metric_value)}"
    return float(v), None


def _record(point, key, ppa_res, met_res, objective, sweep):
    parts = [r for r in (ppa_res, met_res) if r is not None]
    figs = ppa_res["value"] if ppa_res else None
    mval = met_res["value"] if met_res else None
    errors = [r["error"] for r in parts if r["error"]]
    obj, err = _objective(mval, objective) if not errors else (None, None)
    if err:
        errors.append(err)
    figs = figs or {}
    return {"key": key, "name": point_name(point), "config": point,
            "status": "failed" if errors else "done",
            "luts": figs.get("luts"), "ffs": figs.get("ffs"),
            "fmax_mhz": figs.get("fmax_mhz"), "figures": figs or None, "metric": mval,
            "objective": obj, "rtl_hash": figs.get("rtl_hash"),
            "tool_versions": figs.get("tool_versions"),
            "error": "; ".join(errors) or None,
            "started": min(r["started"] for r in parts),
            "finished": max(r["finished"] for r in parts),
            "seconds": round(sum(r["seconds"] for r in parts), 3), "sweep": sweep}


class _Serial:
    """Runs tasks in this process, in submission order (``scheduler="serial"``)."""

    def run(self, jobs):
        for tag, fn, args in jobs:
            yield tag, _task(args[0], fn, args[1])


class _Dask:
    def __init__(self, client):
        self.client = client

    def run(self, jobs):
        from distributed import as_completed
        futs = {}
        for tag, fn, (kind, point) in jobs:
            try:
                f = self.client.submit(_task, kind, fn, point, pure=False)
            except Exception as e:      # e.g. a callable that cannot be pickled
                raise DSEError(f"cannot submit the {kind} task to Dask: "
                               f"{type(e).__name__}: {_first_line(e)}") from None
            futs[f] = tag
        for f in as_completed(list(futs)):
            try:
                res = f.result()
            except Exception as e:      # the task, not the callable, failed (a lost worker)
                now = _now()
                res = {"value": None, "started": now, "finished": now, "seconds": 0.0,
                       "error": f"{futs[f][0]}: Dask: {type(e).__name__}: {_first_line(e)}"}
            yield futs[f], res


def _open_scheduler(scheduler, workers):
    """(executor, close) for ``scheduler``: "serial", None (a LocalCluster of ``workers``
    processes), an address, or a ``distributed.Client``."""
    if scheduler == "serial":
        return _Serial(), lambda: None
    try:
        import distributed
    except ImportError:
        raise DSEError("Dask distributed is not installed: pip install 'dask[distributed]' "
                       "(or run with --serial)") from None
    if isinstance(scheduler, distributed.Client):
        return _Dask(scheduler), lambda: None
    import logging
    if scheduler is None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise DSEError(f"workers must be a positive integer, not {workers!r}")
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None,
                                           silence_logs=logging.ERROR)
        client = distributed.Client(cluster)

        def close():
            client.close()
            cluster.close()
        return _Dask(client), close
    if not isinstance(scheduler, str):
        raise DSEError(f"scheduler must be None, 'serial', an address or a Client, not "
                       f"{scheduler!r}")
    try:
        import dask
        client = distributed.Client(
            scheduler, timeout=dask.config.get("distributed.comm.timeouts.connect"))
    except (OSError, TimeoutError) as e:
        raise DSEError(f"cannot reach the Dask scheduler at {scheduler}: "
                       f"{_first_line(e) or type(e).__name__}") from None
    return _Dask(client), client.close


def run_sweep(space, metric=None, ppa=None, scheduler=None, out="dse-out", workers=2,
              cache=None, rerun=False, progress=None):
    """Run the sweep of ``space`` and return its summary.

    Parameters
    ----------
    space : str, Path or dict
        A space file (TOML/JSON) or its dict (checked by :func:`~mxhw.dse_space.check_space`).
    metric : callable or None
        ``metric(point) -> dict`` of numbers. Default: the space's ``sweep.metric``
        (``model``: :func:`model_metric`, ``sqnr``: :func:`sqnr_metric`); ``none`` in the
        space skips it. It must depend on the point's ``spec``, ``model`` and ``metric``
        only: it runs once per distinct spec (with one of its points).
    ppa : callable or None
        ``ppa(point) -> dict`` with a number ``luts`` (LUT4-eq.) and optionally ``ffs``,
        ``fmax_mhz``, ``rtl_hash``, ``tool_versions`` and any other figures. Default:
        :func:`suite_ppa` (with ``cache``); ``ppa = false`` in the space skips it. It runs
        once per distinct ``hw``.
    scheduler : None, str or distributed.Client
        None: a ``LocalCluster`` of ``workers`` processes; ``"serial"``: in this process;
        an address (``tcp://host:8786``): that cluster; a Client: its cluster.
    out : str or Path
        Folder of ``dse.sqlite``, ``dse.csv``, ``dse.json`` and ``pareto.png``.
    rerun : bool
        Recompute the space's finished points too.
    progress : bool or None
        A tqdm progress bar (None: when stderr is a terminal).

    Returns ``{"points": rows in space order (see :func:`mxhw.dse_db.rows`), "computed",
    "reused", "failed", "ppa_calls", "metric_calls", "files": {...}}``. Points whose
    callables raise are stored as ``failed`` (with the error) and retried by the next
    run; finished points of an earlier run (same key) are reused.
    """
    space = load_space(space) if isinstance(space, (str, Path)) else check_space(space)
    sw = space["sweep"]
    pts = points(space)
    keys = [point_key(p) for p in pts]
    if sw["ppa"]:
        if ppa is None:
            from functools import partial
            ppa = partial(suite_ppa, cache=str(cache) if cache else None)
    else:
        ppa = None
    if sw["metric"] == "none":
        metric = None
    elif metric is None:
        if sw["metric"] == "model" and importlib.util.find_spec("mxhw.model") is None:
            raise DSEError("metric 'model' needs mxhw.model, which is not installed; use "
                           "metric = \"sqnr\" in [sweep] or --metric sqnr")
        metric = model_metric if sw["metric"] == "model" else sqnr_metric
    objective = sw["objective"] or (DEFAULT_OBJECTIVE.get(sw["metric"])
                                    if metric in (model_metric, sqnr_metric) else None)
    for name, fn in (("ppa", ppa), ("metric", metric)):
        if fn is not None and not callable(fn):
            raise DSEError(f"{name} must be callable, not {fn!r}")
    out = Path(out)
    dbpath = out / db.DB_NAME
    con = db.connect(dbpath)
    try:
        done = set() if rerun else db.done_keys(con) & set(keys)
        todo = [(k, p) for k, p in zip(keys, pts) if k not in done]
        # one task per distinct hardware (PPA) and per distinct spec (metric)
        hw_tasks, spec_tasks = {}, {}
        for _, p in todo:
            if ppa is not None:
                hw_tasks.setdefault(hw_key(p), p)
            if metric is not None:
                spec_tasks.setdefault(spec_key(p), p)
        # the largest arrays first: the longest runs start early
        jobs = [(("ppa", h), ppa, ("ppa", p)) for h, p in
                sorted(hw_tasks.items(), key=lambda kv: -kv[1]["hw"]["rows"]
                       * kv[1]["hw"]["cols"])]
        jobs += [(("metric", s), metric, ("metric", p)) for s, p in spec_tasks.items()]
        failed = 0
        if todo:
            results = {}
            waiting = {k: p for k, p in todo}
            bar = _bar(len(todo), progress)
            executor, close = _open_scheduler(scheduler, workers)
            try:
                for tag, res in executor.run(jobs):
                    results[tag] = res
                    for k, p in list(waiting.items()):
                        pr = results.get(("ppa", hw_key(p))) if ppa else None
                        mr = results.get(("metric", spec_key(p))) if metric else None
                        if (ppa and pr is None) or (metric and mr is None):
                            continue
                        rec = _record(p, k, pr, mr, objective, sw["name"])
                        db.write_result(con, rec)
                        failed += rec["status"] == "failed"
                        del waiting[k]
                        bar.update(1)
            finally:
                bar.close()
                close()
        rs = db.rows(con, keys)
    finally:
        con.close()
    files = {"db": str(dbpath), "csv": str(db.export_csv(rs, out / "dse.csv")),
             "json": str(db.export_json(rs, out / "dse.json", {
                 "space": space, "objective": objective, "pareto": db.pareto(
                     rs, sw["minimize"])}))}
    png = db.plot_pareto(rs, out / "pareto.png", objective or "metric", sw["minimize"],
                         title=f"{sw['name']}: {objective or 'metric'} vs LUT4-eq.")
    if png:
        files["png"] = str(png)
    return {"points": rs, "computed": len(todo), "reused": len(pts) - len(todo),
            "failed": failed, "ppa_calls": len(hw_tasks), "metric_calls": len(spec_tasks),
            "objective": objective, "files": files}


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _bar(total, progress):
    if progress is False:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="point", desc="dse", disable=None if progress is None
                else not progress, file=sys.stderr)


# ---- the command line --------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mxhw.dse", description=__doc__.split(
        "\n\n")[0].replace("\n", " ").split(": ", 1)[1], epilog="space file schema: docs/dse.md")
    p.add_argument("--space", metavar="FILE", required=True,
                   help="the design space (.toml or .json)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler (default: a LocalCluster of --workers "
                        "processes)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="LocalCluster worker processes (default 2)")
    p.add_argument("--serial", action="store_true", help="run every task in this process")
    p.add_argument("--out", metavar="DIR", default="dse-out",
                   help="results folder (default dse-out): dse.sqlite, dse.csv, dse.json, "
                        "pareto.png")
    p.add_argument("--no-ppa", action="store_true", help="no PPA (the space's ppa = false)")
    p.add_argument("--metric", choices=["model", "sqnr", "none"],
                   help="override the space's sweep.metric")
    p.add_argument("--cache", metavar="DIR", help="the PPA cache (default: the PPA suite's)")
    p.add_argument("--rerun", action="store_true", help="recompute finished points too")
    p.add_argument("--list", action="store_true", help="list the points and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error(f"--workers must be at least 1, not {args.workers}")
    if args.serial and args.scheduler:
        p.error("--serial and --scheduler exclude each other")
    try:
        space = load_space(args.space)
        if args.no_ppa:
            space["sweep"]["ppa"] = False
        if args.metric:
            space["sweep"]["metric"] = args.metric
        space = check_space(space)
        if args.list:
            for pt in points(space):
                print(f"{point_key(pt)}  {point_name(pt)}")
            return 0
        t0 = time.monotonic()
        res = run_sweep(space, scheduler="serial" if args.serial else args.scheduler,
                        out=args.out, workers=args.workers, cache=args.cache,
                        rerun=args.rerun, progress=False if args.quiet else None)
    except (SpaceError, DSEError, ValueError, OSError) as e:
        print(f"dse: error: {_first_line(e) or type(e).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dse: interrupted; finished points are in {Path(args.out) / db.DB_NAME}",
              file=sys.stderr)
        return 130
    for r in res["points"]:
        if r["status"] == "failed":
            print(f"dse: {r['name']} failed: {r['error']}", file=sys.stderr)
    n = len(res["points"])
    print(f"dse: {n} point(s): {res['computed']} computed ({res['failed']} failed), "
          f"{res['reused']} reused, {time.monotonic() - t0:.1f} s")
    best = [r for r in res["points"] if r["status"] == "done"]
    if best and res["objective"]:
        front = set(db.pareto(res["points"], space["sweep"]["minimize"]))
        for r in best:
            if r["key"] in front:
                print(f"  pareto: {r['name']}: {r['luts']:.0f} LUT4-eq., "
                      f"{res['objective']} {r['objective']:.4g}")
    for kind, path in res["files"].items():
        print(f"wrote {path}")
    return 1 if res["failed"] else 0


if __name__ == "__main__":
    # through the imported module, so Dask pickles the default callables by reference
    # (mxhw.dse.suite_ppa), not as __main__'s
    from mxhw.dse import main as _main
    sys.exit(_main())
