"""Test drivers for :mod:`mxhw.dse`: cheap real callables for a sweep's points (computed
here, from golden and Amaranth, not by mxhw.dse), call counters and space builders.

Module-level functions, so Dask pickles them by reference and worker processes import
them (``support`` is on the path of pytest's spawned workers as well).
"""

import hashlib
import json
import threading
import time

import numpy as np

__all__ = ["TENSOR", "golden_sqnr", "rtlil_cells", "slow_sqnr", "exit_worker", "Counter",
           "space", "spec"]

#: The tensor of :func:`golden_sqnr` (fixed seed).
TENSOR = np.random.default_rng(7).standard_normal((8, 128))


def golden_sqnr(point):
    """Golden SQNR (dB) and bits per value of the spec's default weight format on
    :data:`TENSOR` (:func:`mxhw.golden.compare.evaluate`)."""
    from mxhw.golden import compare
    bpv, sqnr, maxerr = compare.evaluate(TENSOR, point["spec"]["default"]["w"])
    return {"sqnr_db": sqnr, "bits": bpv, "max_err": maxerr}


def slow_sqnr(point):
    """:func:`golden_sqnr` after a short sleep (sweeps' writes interleave)."""
    time.sleep(0.05)
    return golden_sqnr(point)


_CELLS = {}


def rtlil_cells(point):
    """A cheap, real PPA stand-in: the number of cells (``luts``) and of wires (``ffs``)
    in the Amaranth RTLIL of the point's array, and the RTLIL's hash (remembered per
    array in each process)."""
    key = json.dumps(point["hw"], sort_keys=True)
    if key not in _CELLS:
        _CELLS[key] = _rtlil_cells(point["hw"])
    return dict(_CELLS[key])


def _rtlil_cells(h):
    from amaranth.back import rtlil

    from mxhw import golden
    from mxhw.systolic import SystolicArray
    arr = SystolicArray(h["rows"], h["cols"], h["fmt_a"], h["fmt_b"],
                        dataflow=h["dataflow"], acc=golden.arith.fixed(*h["acc"]))
    text = rtlil.convert(arr, name="top")
    lines = [ln.strip() for ln in text.splitlines()]
    return {"luts": sum(ln.startswith("cell ") for ln in lines),
            "ffs": sum(ln.startswith("wire ") for ln in lines),
            "rtl_hash": hashlib.sha256(text.encode()).hexdigest()[:24]}


class Counter:
    """Wraps ``fn``; ``calls`` lists the points it was called with (in-process runs)."""

    def __init__(self, fn, fail=None):
        self.fn, self.fail, self.calls = fn, fail, []
        self._lock = threading.Lock()

    def __call__(self, point):
        with self._lock:
            self.calls.append(point)
        if self.fail is not None and self.fail(point):
            raise RuntimeError("injected failure")
        return self.fn(point)


def spec(w, a=None, **patterns):
    """A spec dict: default ``{w, a}``, plus ``pattern={"w": .., "a": ..}`` entries."""
    return {"default": {"w": w, "a": a}, **patterns}


def space(sizes=(1, 2), formats=("mxfp4",), specs=None, **sweep):
    """A space dict: the ``sqnr`` metric (an injected callable replaces it), no PPA unless
    ``ppa=True``."""
    specs = specs or {"w4": spec("mxfp4", "mxint8"), "w8": spec("mxint8")}
    return {"sweep": {"name": "test", "ppa": False, "metric": "sqnr", **sweep},
            "hardware": {"sizes": list(sizes), "formats": list(formats)},
            "specs": specs}


def exit_worker(point):
    """Ends the worker process that runs it (a lost Dask worker)."""
    import os
    os._exit(3)
