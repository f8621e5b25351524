"""``python -m mxhw.formal [BLOCK...]``: run the proof set; one line per property and a
summary. Exit status 1 if any proof did not end as expected (proved)."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

from .flow import DEFAULT_SOLVER, SOLVERS, run_proof, tool_path
from .proofs import BLOCKS, all_proofs
from .table import record


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mxhw.formal", description=__doc__)
    ap.add_argument("blocks", nargs="*", metavar="BLOCK",
                    help=f"blocks to prove (default: all): {', '.join(sorted(BLOCKS))}")
    ap.add_argument("--thorough", action="store_true",
                    help="also the slow proofs (not run in CI)")
    ap.add_argument("--solver", choices=sorted(SOLVERS), default=None,
                    help=f"SMT solver (default {DEFAULT_SOLVER})")
    ap.add_argument("--timeout", type=int, default=None, help="seconds per proof")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="proofs run in parallel")
    ap.add_argument("--root", default="build/formal", help="work folders go here")
    ap.add_argument("-k", dest="match", default=None,
                    help="only proofs whose name contains this")
    ap.add_argument("--list", action="store_true", help="list the proofs and exit")
    ap.add_argument("--table", action="store_true",
                    help="print the README's status table of every proof and exit")
    ap.add_argument("--record", action="store_true",
                    help="record the results (time, load) in mxhw/formal/times.json")
    args = ap.parse_args(argv)
    if args.table and (args.blocks or args.match):
        ap.error("--table prints every proof: it takes no BLOCK or -k")
    if args.table:
        from .table import load_times, render
        print(render(all_proofs(thorough=True), load_times()))
        return 0
    try:
        proofs = all_proofs(args.blocks, thorough=args.thorough)
    except ValueError as e:
        ap.error(str(e))
    if args.match:
        proofs = [p for p in proofs if args.match in p.name]
    if args.list:
        for p in proofs:
            print(f"{p.name}: {p.block}: {p.prop}" + (" [thorough]" if p.thorough else ""))
        return 0
    with tempfile.TemporaryDirectory(prefix="mxhw-formal-") as tmp:
        path = tool_path(tmp)
        results = []

        lock = threading.Lock()

        def one(p):
            load0 = os.getloadavg()[0]
            r = run_proof(p, solver=args.solver, root=args.root, timeout=args.timeout,
                          path=path)
            print(r.line(), flush=True)
            if args.record:     # as each proof ends: an interrupted run keeps its results
                loads = sorted((load0, os.getloadavg()[0]))
                with lock:
                    record([r], "{:.0f}-{:.0f}".format(*loads),
                           datetime.date.today().isoformat())
            return r
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(one, proofs))
    counts = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    total = sum(r.seconds for r in results)
    print(f"summary: {len(results)} proofs: "
          + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
          + f"; {total:.0f} s of proof time")
    return 0 if all(r.status == r.proof.expect for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
