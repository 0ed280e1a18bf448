"""Runners: execute a built program on its board and return what it printed. They never judge.

host.py runs the native program; qemu.py runs a Cortex-M ELF under qemu-system-arm. Both return
a result.RunResult (exit code, console text, wall time).
"""
