"""Hypothesis settings every test honours.

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (the default), ``thorough`` (long local runs:
every test's example count times :data:`THOROUGH_FACTOR`) and ``quick`` (a smoke run).
A test that needs fewer examples than the profile's default (a slow simulation) says so
with :func:`examples` or :func:`budget`, never with a bare ``max_examples``, so the
profile scales it.
"""

import os

from hypothesis import HealthCheck, settings

__all__ = ["PROFILE", "FACTOR", "THOROUGH_FACTOR", "examples", "budget"]

THOROUGH_FACTOR = 20
_FACTORS = {"ci": 1.0, "thorough": float(THOROUGH_FACTOR), "quick": 0.2}
_DEFAULT_EXAMPLES = 50

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in _FACTORS:
    raise ValueError(f"HYPOTHESIS_PROFILE must be one of {', '.join(_FACTORS)}, "
                     f"not {PROFILE!r}")
FACTOR = _FACTORS[PROFILE]

_common = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
for _name, _f in _FACTORS.items():
    settings.register_profile(_name, max_examples=max(1, round(_DEFAULT_EXAMPLES * _f)),
                              **_common)
settings.load_profile(PROFILE)


def examples(n):
    """``n`` examples (the ``ci`` count) scaled by the active profile: at least 1."""
    return max(1, round(n * FACTOR))


def budget(n, **kwargs):
    """``@budget(10)``: ``hypothesis.settings(max_examples=examples(10), **kwargs)``."""
    return settings(max_examples=examples(n), **kwargs)
