"""Stage 2, quantization: calibrate, quantize to the integer model (intmodel.json), the fixed-point math, the
integer reference every target byte is judged against, and the float/fake-quant cross-checks."""
