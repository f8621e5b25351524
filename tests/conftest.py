"""Shared test settings.

Hypothesis profiles: ``ci`` (default; bounded examples, no deadline: simulation time varies
on a busy machine) and ``thorough`` (HYPOTHESIS_PROFILE=thorough, for long local runs).
Waveforms: set MXHW_VCD=1 to make simulation helpers write VCD files under ``out/vcd``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=50, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
