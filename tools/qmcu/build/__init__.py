"""Stage 4, the build: cross-toolchain flags, the compile and link command lines (cross.py, for SCons and the
tests alike), quantize-before-build bookkeeping, how a test set splits over images, and the checks on a linked
image (sizes, no float, the model bytes it holds)."""
