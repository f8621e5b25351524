"""Test drivers for the PPA suite and the toolchain: stand-ins for Yosys and nextpnr that
write the files the real tools would, and fake results.

``use_tools(monkeypatch, fake)`` puts ``fake(cmd, cwd, log, label)`` in place of every
tool run of :mod:`mxhw.bench.ppa` (the seam :func:`mxhw.bench.ppa.runner.run_tool`).
"""

import json

from mxhw.bench import ppa
from mxhw.bench.ppa import runner

__all__ = ["STAT", "stat_text", "nextpnr_report", "FakeTools", "use_tools", "fake_result"]

#: A Yosys ``stat`` block of the harnessed block, two cell types.
STAT = """
=== ppa_top.dut ===

       12 wires
       {total} cells
       {a}   {ca}
       {b}   {cb}
"""


def stat_text(cells):
    """A Yosys ``stat`` block listing ``cells`` (``[(type, count), (type, count)]``)."""
    (ca, a), (cb, b) = cells
    return STAT.format(total=a + b, a=a, ca=ca, b=b, cb=cb)


def nextpnr_report(achieved, constraint=300.0):
    """The text of a nextpnr ``--report`` JSON with one clock."""
    return json.dumps({"fmax": {"clk": {"achieved": achieved, "constraint": constraint}},
                       "utilization": {}, "critical_paths": []})


#: the versions the fake tools report (the real ones need the tools installed)
FAKE_VERSIONS = {"yosys": "Yosys 0.0 (fake)", "nextpnr_ecp5": "nextpnr-ecp5 0.0 (fake)"}


def use_tools(monkeypatch, fake):
    """Run ``fake(cmd, cwd, log, label)`` instead of each tool of the PPA suite, and
    report :data:`FAKE_VERSIONS` as the tools' versions (no real tool is looked up: the
    tests need no toolchain)."""
    monkeypatch.setattr(runner, "run_tool", fake)
    monkeypatch.setattr(runner, "tool_versions", lambda: dict(FAKE_VERSIONS))
    monkeypatch.setattr(ppa, "tool_versions", lambda: dict(FAKE_VERSIONS))
    monkeypatch.setattr(runner, "find_tool", lambda name: name)


class FakeTools:
    """Stands in for Yosys and nextpnr: writes the files they would, counts the runs
    (``runs``: the labels). ``cells`` maps a target to its two ``(type, count)`` pairs;
    ``fmax`` is what nextpnr reports (or ``{seed: fmax}``)."""

    def __init__(self, luts=40, cells=None, fmax=123.456):
        self.runs = []
        self.cells = {"ecp5": (("LUT4", luts), ("TRELLIS_FF", 9)),
                      "ecp5_nodsp": (("LUT4", luts), ("TRELLIS_FF", 9)),
                      "xc7": (("LUT6", 30), ("FDRE", 9)), **(cells or {})}
        self.fmax = fmax

    def __call__(self, cmd, cwd, log, label):
        self.runs.append(label)
        if label.startswith("yosys synth ("):
            target = label[len("yosys synth ("):-1]
            (cwd / f"{target}_stat.txt").write_text(stat_text(self.cells[target]))
            if target == "ecp5":
                (cwd / "ecp5.json").write_text("{}")
        else:
            fmax = self.fmax
            if isinstance(fmax, dict):
                fmax = fmax[int(cmd[cmd.index("--seed") + 1])]
            (cwd / "ecp5_report.json").write_text(nextpnr_report(fmax))


def fake_result(name, luts=100, fmax=200.0):
    """A :func:`mxhw.bench.ppa.run_config` result with both targets measured."""
    return {"name": name, "cached": {}, "errors": {},
            "ecp5": {"luts": luts, "lut4": luts - 20, "ccu2c": 10, "ffs": 50, "dsps": 1,
                     "brams": 0, "lutram": 0, "fmax_mhz": fmax},
            "xc7": {"luts": 90, "carry4": 3, "ffs": 50, "dsps": 0, "brams": 0.5,
                    "lutram": 0}}
