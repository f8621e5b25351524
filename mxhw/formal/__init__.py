"""Formal proofs of mxhw blocks (SymbiYosys from YoWASP, SMT solvers from PyPI).

``python -m mxhw.formal [BLOCK...]``; see docs/formal.md."""

from .flow import Proof, Result, run_proof
from .proofs import all_proofs

__all__ = ["Proof", "Result", "run_proof", "all_proofs"]
