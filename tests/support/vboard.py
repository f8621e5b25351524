"""Shared drivers for the virtual board's tests: start ``python -m mxhw.sim.board`` in a
subprocess, read the endpoint it prints, stop it with a signal, read its CPU time."""

import os
import select
import signal
import subprocess
import sys
import time

import numpy as np

__all__ = ["Board", "cpu_seconds", "readme_operands"]

BUILD_TIMEOUT = 900      # a first (uncached) compiled build of the SoC takes minutes


class Board:
    """``python -m mxhw.sim.board *args`` in a subprocess; ``where`` is the first line it
    prints on stdout (``/dev/pts/N`` or ``socket://127.0.0.1:PORT``)."""

    def __init__(self, *args, timeout=BUILD_TIMEOUT):
        t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "mxhw.sim.board", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        self.start_seconds = time.monotonic() - t0
        if not line:
            self.stop()
            raise RuntimeError(f"the virtual board printed no endpoint: "
                               f"{self.stderr.strip()!r}")
        self.where = line
        self.rc = None
        self.stderr = ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Send ``sig``; returns the exit code (stderr in ``self.stderr``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.stderr = err.decode()
        self.rc = self.proc.returncode
        return self.rc


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def readme_operands():
    """The README's matmul example: 8x64 @ 64x8, float operands."""
    a = np.random.default_rng(0).standard_normal((8, 64))
    b = np.random.default_rng(1).standard_normal((64, 8))
    return a, b
