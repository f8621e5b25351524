"""Bad input to golden gets a clear error (issue #31, finding 7): empty tensors and complex
input to ``golden.quantize``; ``python -m mxhw.golden.compare`` with a missing, non-.npy,
0-d, empty or complex tensor, or ``--plot`` into a missing folder: one line, exit 2."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.hyp import budget
from support.robust import run_cli

from mxhw import golden

FORMATS = ["mxfp4", "mxfp8_e4m3", "mxint8", "mxfp6_e3m2"]


@st.composite
def empty_shapes(draw):
    """A shape of 1-3 axes with at least one of length 0 (drawn, not filtered)."""
    shape = draw(st.lists(st.integers(0, 40), min_size=1, max_size=3))
    shape[draw(st.integers(0, len(shape) - 1))] = 0
    return shape


@budget(40)
@given(shape=empty_shapes(), fmt=st.sampled_from(FORMATS), data=st.data())
def test_empty_tensor_refused(shape, fmt, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    with pytest.raises(ValueError, match=r"^cannot quantise an empty tensor \(shape "
                                         + rf"\({', '.join(map(str, shape))},?\)\)"):
        golden.quantize(np.zeros(shape), fmt, axis=axis)


@budget(30)
@given(re=st.floats(-8, 8), im=st.floats(-8, 8), fmt=st.sampled_from(FORMATS),
       dtype=st.sampled_from([np.complex64, np.complex128]))
def test_complex_numpy_refused(re, im, fmt, dtype):
    x = np.full((2, 32), complex(re, im), dtype=dtype)
    with pytest.raises(TypeError, match=r"^cannot quantise a complex array"):
        golden.quantize(x, fmt)


def test_complex_torch_refused():
    torch = pytest.importorskip("torch")
    for dt in (torch.complex64, torch.complex128):
        with pytest.raises(TypeError, match=r"^cannot quantise a complex tensor"):
            golden.quantize(torch.ones(2, 32, dtype=dt), "mxfp4")


def test_real_input_still_quantises():
    q = golden.quantize(np.ones((1, 32)), "mxfp4")
    assert q.shape == (1, 32) and np.array_equal(q.dequantize(), np.ones((1, 32)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    np.save(d / "zero_d.npy", np.float64(1.0))
    np.save(d / "empty.npy", np.zeros((0, 32)))
    np.save(d / "cplx.npy", np.ones((2, 32)) + 1j)
    np.save(d / "good.npy", np.linspace(-1, 1, 64).reshape(2, 32))
    (d / "text.npy").write_text("not numpy\n")
    np.savez(d / "two.npz", a=np.ones(3), b=np.ones(3))
    return d


@pytest.mark.parametrize("args, msg", [
    (["--tensor", "{d}/missing.npy"], "no such file"),
    (["--tensor", "{d}/text.npy"], "is not a .npy file"),
    (["--tensor", "{d}/two.npz"], "holds several arrays"),
    (["--tensor", "{d}/zero_d.npy"], "holds a 0-d array"),
    (["--tensor", "{d}/empty.npy"], r"holds an empty array of shape (0, 32)"),
    (["--tensor", "{d}/cplx.npy"], "cannot quantise a complex array"),
    (["--tensor", "{d}/good.npy", "--plot", "{d}/no/such/folder/p.png"], "does not exist"),
])
def test_compare_cli_errors(files, args, msg):
    code, out, err = run_cli("mxhw.golden.compare", "--formats", "mxfp4",
                             *[a.format(d=files) for a in args])
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("python -m mxhw.golden.compare: error: ") and msg in err, err


def test_compare_cli_good_tensor(files):
    code, out, err = run_cli("mxhw.golden.compare", "--formats", "mxfp4", "--tensor",
                             f"{files}/good.npy")
    assert code == 0 and "| mxfp4 |" in out, err
