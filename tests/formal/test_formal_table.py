"""The README's formal status table is the one rendered from the proof registry and the
recorded runs (mxhw/formal/table.py): it cannot drift from either. No tools needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mxhw.formal.flow import Proof
from mxhw.formal.proofs import BLOCKS, all_proofs
from mxhw.formal.table import load_times, readme_table, render, scope

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_generated():
    want = render(all_proofs(thorough=True), load_times())
    got = readme_table(README.read_text())
    assert got == want, "README formal table is stale: paste `python -m mxhw.formal --table`"


def test_every_ci_proof_has_a_recorded_run():
    times = load_times()
    missing = [p.name for p in all_proofs() if p.name not in times]
    assert not missing, f"CI proofs without a recorded run (python -m mxhw.formal --record): {missing}"


def test_recorded_status_is_the_expected_one():
    # a CI proof's last recorded run ended as the registry expects (proved, or a known bug)
    times = load_times()
    wrong = [(p.name, times[p.name]["status"]) for p in all_proofs()
             if p.name in times and times[p.name]["status"] != p.expect]
    assert not wrong


def test_every_issue_block_has_proofs():
    # issue #32's blocks (the stream contracts: the FIFOs and the skid buffer)
    for b in ("ElementMultiplier", "MXDotProduct", "Aligner", "Requantizer", "MXSF",
              "BitSerialPE", "BitSerialDequant", "WeightMapper", "StreamFIFO",
              "SkidBuffer", "HostLink", "GemmSequencer"):
        assert BLOCKS[b](), b


def test_scope_states_why_bounded():
    assert scope(Proof("x", "B", "p", None, mode="prove", depth=3))[0].startswith("unbounded")
    assert scope(Proof("x", "B", "p", None, depth=1))[0].startswith("every input")
    assert scope(Proof("x", "B", "p", None, depth=5, reason="r")) == ("bounded: BMC depth 5",
                                                                       "r")
    with pytest.raises(ValueError, match="without a stated reason"):
        scope(Proof("x", "B", "p", None, depth=5))


def test_readme_markers_missing():
    with pytest.raises(ValueError, match="markers missing"):
        readme_table("no table here")


def test_cli_table(capsys):
    from mxhw.formal.__main__ import main
    assert main(["--table"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| proof | block |") and "`weightmap_all_l2`" in out


def test_record_merges(tmp_path):
    from mxhw.formal.flow import Result
    from mxhw.formal.table import record
    path = tmp_path / "times.json"
    p = Proof("a", "B", "p", None, depth=1)
    record([Result(p, "proved", 12.34, "boolector", tmp_path)], "3-4", "2026-12-07", path)
    record([Result(Proof("b", "B", "p", None), "timed out", 600.0, "z3", tmp_path)],
           "5-6", "2026-12-08", path)
    t = load_times(path)
    assert t["a"] == {"status": "proved", "seconds": 12.3, "solver": "boolector",
                      "load": "3-4", "date": "2026-12-07"}
    assert t["b"]["status"] == "timed out" and t["b"]["solver"] == "z3"
    table = render([p], t)
    assert "| proved | 12 s (load 3-4, 2026-12-07) | boolector | CI |" in table


@pytest.mark.parametrize("extra", [["HostLink"], ["-k", "link"]])
def test_table_refuses_a_selection(extra, capsys):
    """--table prints every proof; a block or -k with it is refused, not ignored."""
    from mxhw.formal.__main__ import main as formal_main
    with pytest.raises(SystemExit) as e:
        formal_main(["--table", *extra])
    assert e.value.code == 2
    assert "--table prints every proof" in capsys.readouterr().err
