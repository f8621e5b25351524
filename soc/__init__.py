"""mxhw.soc: the accelerator SoC and its host driver."""
