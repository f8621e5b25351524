"""Shared test settings.

Hypothesis profiles live in :mod:`support.hyp` (``ci`` default, ``thorough``, ``quick``;
``HYPOTHESIS_PROFILE=thorough``); every test takes its example count from there.
Markers (pyproject.toml): ``slow``, ``toolchain`` (Yosys/nextpnr), ``compiled`` (a C++
compiler); ``make test-fast`` deselects all three and uses the ``quick`` profile.
Waveforms: set MXHW_VCD=1 to make simulation helpers write VCD files under ``out/vcd``.
"""

import support.hyp  # noqa: F401  (registers and loads the profile)
