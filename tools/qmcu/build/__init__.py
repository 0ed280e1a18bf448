"""Stage 4, the build: cross-toolchain flags, quantize-before-build bookkeeping, how a test set splits over
images, and the checks on a linked image (sizes, no float, the model bytes it holds)."""
