"""qmcu: PyTorch in, a pure-integer int8 forward pass on Cortex-M out."""

__version__ = "0.1.0"
