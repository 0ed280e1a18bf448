"""Stage 3, code generation: the model, seed and test-vector headers, board config and linker script, the
kernel weight layout, the quantize step that writes them, and the plan `qmcu check` shows."""
