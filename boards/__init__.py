"""mxhw.boards: board wrappers (clocks, pins, toolchains)."""
