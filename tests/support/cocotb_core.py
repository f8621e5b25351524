"""cocotb tests of the exported accelerator core (``python -m mxhw.export core``), run by
``tests/soc/test_cocotb_core.py`` under Verilator: a Wishbone master this project did not
write (cocotbext-wishbone's ``WishboneMaster``) drives the core's pipelined Wishbone port.

The host driver's GEMM sequence (:meth:`mxhw.soc.driver.Accelerator.matmul`) runs with its
word reads and writes carried out as Wishbone cycles of that master; the result is
checked against ``golden.gemm``. The configuration comes in ``MXHW_CORE_CONFIG`` (the
``--config`` items, separated by spaces).
"""

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles
from cocotbext.wishbone.driver import WBOp, WishboneMaster

from mxhw import golden
from mxhw.soc.driver import Accelerator
from mxhw.soc.top import ID_VALUE, REGS, SCRATCHPAD_BASE, config_overrides

#: the core's port names (``bus__*``, amaranth-soc's member names) for the master
SIGNALS = {"cyc": "bus__cyc", "stb": "bus__stb", "we": "bus__we", "adr": "bus__adr",
           "datwr": "bus__dat_w", "datrd": "bus__dat_r", "ack": "bus__ack",
           "sel": "bus__sel", "stall": "bus__stall"}


class WishboneAccelerator(Accelerator):
    """The host driver with its word reads and writes done by a cocotb Wishbone master
    (from a :func:`cocotb.task.bridge` thread): everything above them, ``matmul`` included, is
    the driver's own code."""

    def __init__(self, wbm):
        super().__init__(transport=None)
        self._wbm = wbm

    def read_words(self, addr, n):
        self._check_span(addr, n)
        return [int(r.datrd) for r in resume(self._wbm.send_cycle)(
            [WBOp(addr // 4 + i, sel=1) for i in range(n)])] if n else []

    def write_words(self, addr, words):
        words = [int(w) for w in words]
        self._check_span(addr, len(words))
        if words:
            resume(self._wbm.send_cycle)(
                [WBOp(addr // 4 + i, w, sel=1) for i, w in enumerate(words)])


async def _start(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.link_errors.value = 0
    dut.rst.value = 1
    wbm = WishboneMaster(dut, None, dut.clk, width=32, timeout=1000, signals_dict=SIGNALS)
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    return wbm


def _config():
    return config_overrides(os.environ.get("MXHW_CORE_CONFIG", "").split())


@cocotb.test()
async def registers_and_scratchpad(dut):
    """ID and FEATURES read as built; scratchpad words written and read back."""
    cfg = _config()
    acc = WishboneAccelerator(await _start(dut))

    @bridge
    def run():
        assert acc.read_reg("ID") == ID_VALUE
        assert acc.read_reg("FEATURES") == cfg.features()
        words = [(0x9E3779B9 * (i + 1)) & 0xFFFFFFFF for i in range(cfg.scratch_words)]
        acc.write_words(SCRATCHPAD_BASE, words)
        assert acc.read_words(SCRATCHPAD_BASE, len(words)) == words
        acc.write_words(REGS["SCRATCH"], [0xCAFEF00D])
        assert acc.read_words(REGS["SCRATCH"], 1) == [0xCAFEF00D]

    await run()


@cocotb.test()
async def gemm_against_golden(dut):
    """A GEMM larger than one tile (M, N past rows, cols) through the Wishbone port,
    bit-exact to golden.gemm with the core's accumulation."""
    cfg = _config()
    acc = WishboneAccelerator(await _start(dut))
    rng = np.random.default_rng(int(os.environ.get("MXHW_SEED", "0")))
    m, n, k = cfg.rows + 1, cfg.cols + 1, 2 * golden.formats.get(cfg.fmt_a).block_size
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))

    @bridge
    def run():
        return acc.matmul(a, b)

    got = await run()
    want = golden.gemm(golden.quantize(a, cfg.fmt_a, axis=1),
                       golden.quantize(b, cfg.fmt_b, axis=0), cfg.acc)
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float64))
