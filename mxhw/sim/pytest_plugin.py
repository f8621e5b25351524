"""pytest plugin: choose the simulation back end for a test run.

Load it with ``-p mxhw.sim.pytest_plugin`` (or ``pytest_plugins = ["mxhw.sim.pytest_plugin"]``
in the root ``conftest.py``). It adds:

* ``--sim-backend=pysim|compiled``: sets ``MXHW_SIM_BACKEND`` for the run, so every
  :func:`mxhw.sim.run` without an explicit ``backend=`` uses it;
* fixture ``sim_backend``: the selected back end's name (pass it as ``backend=``);
* fixture ``each_sim_backend``: parametrised over both back ends, for tests that must hold
  on both (on a cold model cache the compiled one pays a C++ build per design); the
  compiled parameter carries the ``compiled`` marker (deselect it with
  ``-m "not compiled"`` where there is no C++ compiler).
"""

import os

import pytest

from mxhw import sim


def pytest_addoption(parser):
    parser.addoption("--sim-backend", choices=sim.BACKENDS, default=None,
                     help="simulation back end for mxhw.sim.run (default: $MXHW_SIM_BACKEND "
                          "or pysim)")


def pytest_configure(config):
    config.addinivalue_line("markers", "compiled: builds or runs a compiled simulation model "
                                       "(needs a C++ compiler)")
    backend = config.getoption("--sim-backend")
    if backend:
        os.environ["MXHW_SIM_BACKEND"] = backend


@pytest.fixture
def sim_backend():
    return sim.default_backend()


@pytest.fixture(params=[pytest.param("pysim"),
                        pytest.param("compiled", marks=pytest.mark.compiled)])
def each_sim_backend(request):
    return request.param
