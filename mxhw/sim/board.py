"""``python -m mxhw.sim.board``: the virtual board's command line (``docs/virtual_board.md``).

The board itself is :mod:`mxhw.soc.vboard` (it simulates the SoC, and ``mxhw.sim`` imports
nothing of ``mxhw.soc``); this module only runs it under its documented name.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("mxhw.soc.vboard", run_name="__main__", alter_sys=True)
