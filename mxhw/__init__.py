"""mxhw: a hardware generator for microscaling (MX) LLM inference, in Amaranth HDL."""

__version__ = "0.1.0"
