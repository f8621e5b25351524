"""NVFP4 x NVFP4 in the systolic arrays, against golden.nvfp4_gemm (the arrays' twin: the
E4M3 block scales applied exactly to each block sum, fixed accumulation; the FP32
per-tensor scales are the host's) bit for bit: output-stationary (per-PE accumulators)
and weight-stationary; the parameter combinations NVFP4 refuses.

Operands are drawn code by code (support.nvfp4): element codes, E4M3 block scale codes
(negative ones and both NaN codes included) and per-tensor scales."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, strategies as st

from support.hyp import budget
from support.nvfp4 import nvfp4_operand
from support.systolic import acc_strategy, check_gemm, check_ws, waits
from mxhw import golden
from mxhw.golden import nvfp4_gemm
from mxhw.golden.arith import FP32, fixed
from mxhw.systolic import SystolicArray
from mxhw.systolic.grid import PE_PIPELINE_MAX


def operands(M, N, nblk, nan):
    K = 16 * nblk
    return st.tuples(nvfp4_operand((M, K), 1, nan), nvfp4_operand((K, N), 0, nan))


@budget(12, suppress_health_check=list(HealthCheck))
@given(data=st.data(), rows=st.integers(1, 3), cols=st.integers(1, 3), M=st.integers(1, 4),
       N=st.integers(1, 4), nblk=st.integers(1, 3), acc=acc_strategy(), nan=st.booleans(),
       gaps=st.tuples(waits(), waits()), pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_os_matches_golden(data, rows, cols, M, N, nblk, acc, nan, gaps, pipeline):
    """Output-stationary, per-PE accumulators, gaps and stalls: equal to the twin."""
    a, b = data.draw(operands(M, N, nblk, nan))
    check_gemm(a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline)


@budget(10, suppress_health_check=list(HealthCheck))
@given(data=st.data(), rows=st.integers(1, 5), cols=st.integers(1, 3), depth=st.integers(1, 4),
       M=st.integers(1, 5), N=st.integers(1, 3), nblk=st.integers(1, 2), acc=acc_strategy(),
       nan=st.booleans(), gaps=st.tuples(waits(), waits()),
       pipeline=st.integers(0, PE_PIPELINE_MAX))
def test_ws_matches_golden(data, rows, cols, depth, M, N, nblk, acc, nan, gaps, pipeline):
    """Weight-stationary (a block of 16 over one or more passes): equal to the twin."""
    a, b = data.draw(operands(M, N, nblk, nan))
    check_ws(a, b, rows, cols, acc, gaps, 0.5, 0.5, pipeline=pipeline, depth=depth)


@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
def test_quantised_data_with_host_scales(dataflow):
    """golden-quantised NVFP4 through the array, then the host's per-tensor step: the
    float64 product of the dequantised operands (the accumulator is exact here)."""
    rng = np.random.default_rng(7)
    a = golden.quantize(rng.standard_normal((3, 32)) * 5, "nvfp4", axis=1)
    b = golden.quantize(rng.standard_normal((32, 2)), "nvfp4", axis=0)
    acc = fixed(53, 20)           # exact: products down to 2**-20, sums below 2**32
    from support.systolic import check_array
    check_array(dataflow, a, b, 2, 2, acc)        # array == twin (raw accumulators)
    c = nvfp4_gemm.gemm_scaled(a, b, acc)
    np.testing.assert_allclose(c, a.dequantize() @ b.dequantize(), rtol=1e-12, atol=0)


# ---- refused combinations -------------------------------------------------------------------

def test_fp32_accumulation_refused():
    for df in ("output_stationary", "weight_stationary"):
        with pytest.raises(ValueError, match="NVFP4 operands need fixed-point accumulation"):
            SystolicArray(2, 2, "nvfp4", "nvfp4", dataflow=df, acc=FP32)


def test_shared_and_bitserial_refused():
    acc = fixed(32, 8)
    assert not SystolicArray(2, 2, "nvfp4", "nvfp4", acc=acc).shared_acc
    with pytest.raises(ValueError, match="shared_acc=True needs power-of-two block scales"):
        SystolicArray(2, 2, "nvfp4", "nvfp4", acc=acc, shared_acc=True)
    with pytest.raises(ValueError, match="bit-serial PE takes power-of-two scales"):
        SystolicArray(2, 2, "nvfp4", "nvfp4", acc=acc, pe="bitserial")


def test_mixed_pair_refused():
    with pytest.raises(ValueError, match="NVFP4 pairs with NVFP4 only"):
        SystolicArray(2, 2, "nvfp4", "mxfp4", acc=fixed(32, 8))


def test_other_fp_scales_still_refused():
    with pytest.raises(ValueError, match="power-of-two scales"):
        SystolicArray(2, 2, "fp8_e4m3_pt", "fp8_e4m3_pt", acc=fixed(32, 8))


@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
def test_engine(dataflow):
    """GemmEngine with NVFP4 operands: equal to the twin."""
    from support.soc import run_engine
    rng = np.random.default_rng(34)
    a = golden.quantize(rng.standard_normal((3, 32)) * 3, "nvfp4", axis=1)
    b = golden.quantize(rng.standard_normal((32, 3)), "nvfp4", axis=0)
    acc = fixed(40, 12)
    kw = {"depth": 2} if dataflow == "weight_stationary" else {}
    got, _ = run_engine(a, b, 2, 2, acc, p_idle=0.2, p_stall=0.2, dataflow=dataflow, **kw)
    val, raw = nvfp4_gemm.gemm(a, b, acc, return_raw=True)
    for (mm, nn), v in np.ndenumerate(val):
        assert got[mm, nn] == (raw[mm, nn], 0), (mm, nn, got[mm, nn], raw[mm, nn])
