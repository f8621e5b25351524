"""The compiled back end's private Amaranth imports (mxhw/sim/compiled/_amaranth.py): this
fails loudly when the installed Amaranth is not the version they were written for, or when
one of them is gone, so an Amaranth upgrade starts by porting that one module."""

import importlib

import amaranth
import pytest

from mxhw.sim.compiled import _amaranth


def test_installed_amaranth_is_the_checked_version():
    major, minor, *_ = amaranth.__version__.split(".")
    assert (int(major), int(minor)) in _amaranth.SUPPORTED, (
        f"Amaranth {amaranth.__version__} is installed; mxhw/sim/compiled/_amaranth.py was "
        f"written for {_amaranth.SUPPORTED}: port it, then widen SUPPORTED")
    assert _amaranth.check_version() == (int(major), int(minor))


@pytest.mark.parametrize("module", sorted(_amaranth.PRIVATE_NAMES))
def test_private_names_exist(module):
    mod = importlib.import_module(module)
    missing = [n for n in _amaranth.PRIVATE_NAMES[module] if not hasattr(mod, n)]
    assert not missing, f"{module} no longer has {missing}: port mxhw/sim/compiled/_amaranth.py"


def test_private_protocols_still_hold():
    """The private behaviour the back end relies on, beyond names: preparing a design with
    ports, its undriven signals, and converting it."""
    from amaranth.hdl import Module, Signal
    a, t, y = Signal(4, name="a"), Signal(4, name="t"), Signal(4, name="y")
    m = Module()
    m.d.comb += t.eq(a ^ 1)
    m.d.sync += y.eq(t + 1)
    design = _amaranth.prepare(m)
    assert [s.name for s in _amaranth.undriven_signals(design)] == ["a"]
    assert _amaranth.domains(design) == {"sync"}
    ports = {"a": (a, _amaranth.PortDirection.Input), "y": (y, _amaranth.PortDirection.Output)}
    text, names = _amaranth.convert_prepared(_amaranth.prepare(m, ports))
    assert "module \\top" in text and " input " in text and "\\clk" in text
    assert names.get(t) == ("top", "t")     # internal signals by hierarchical name


@pytest.mark.parametrize("version", ["0.4.5", "0.6.0", "1.0.0", "unknown"])
def test_other_versions_refused_by_name(version):
    with pytest.raises(_amaranth.UnsupportedAmaranth, match=f"Amaranth {version} is installed"):
        _amaranth.check_version(version)
