"""The one place that knows the compile and link command lines.

SCons's graph (sconsbuild.py) puts Compiler.compile_argv/link_argv into its actions, with $SOURCE and
$TARGET for the paths; the tests build their programs with cross_build() (a Cortex-M image: the board's
platform files, its linker script, and board_config.hpp when the board needs one) and host_build().
The flags themselves come from toolchain.py; this module only puts them in order.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from qmcu.boards import Board, Corner
from qmcu.build import toolchain
from qmcu.codegen import board_config, linker_script
from qmcu.paths import FIRMWARE_DIR, RUNTIME_INCLUDE

logger = logging.getLogger(__name__)

# Searched after a build's own include folders, by every build: the runtime, the platform and the application.
FIRMWARE_INCLUDES = (RUNTIME_INCLUDE, toolchain.PLATFORM_DIR, FIRMWARE_DIR / "app")


class BuildError(RuntimeError):
    """A compile or link command failed: the command line, then the compiler's own messages, unabridged."""


@dataclass(frozen=True)
class Compiler:
    """A compiler with one board's (or the host's) flags, the build's include folders and defines."""

    cxx: str
    flags: toolchain.Flags
    include_dirs: tuple[str, ...]

    def including(self, *dirs: Path | str) -> Compiler:
        """The same compiler with dirs searched first."""
        return replace(self, include_dirs=(*map(str, dirs), *self.include_dirs))

    def compile_argv(self, source: Path | str, obj: Path | str) -> list[str]:
        defines = [f"-D{k}={v}" for k, v in self.flags.defines.items()]
        return [self.cxx, "-o", str(obj), "-c", *self.flags.cxxflags, *defines,
                *(f"-I{d}" for d in self.include_dirs), str(source)]

    def link_argv(self, objects: Sequence[Path | str], program: Path | str, script: Path | str | None = None,
                  link_map: Path | str | None = None, extra_link: Sequence[str] = (),
                  extra_libs: Sequence[str] = ()) -> list[str]:
        """Libraries go after the objects; the link map is what elfcheck reads for the STD=0 check."""
        placed = ([f"-T{script}"] if script else []) + ([f"-Wl,-Map={link_map}"] if link_map else [])
        libs = [f"-l{lib}" for lib in (*self.flags.libs, *extra_libs)]
        return [self.cxx, "-o", str(program), *self.flags.linkflags, *extra_link, *placed, *map(str, objects), *libs]


def _compiler(cxx: str, flags: toolchain.Flags, defines: Mapping[str, str] | None,
              include_dirs: Sequence[Path | str]) -> Compiler:
    flags = replace(flags, defines={**flags.defines, **(defines or {})})
    return Compiler(toolchain.require_tool(cxx), flags, tuple(map(str, (*include_dirs, *FIRMWARE_INCLUDES))))


def target_compiler(board: Board, corner: Corner, opt: str = "-O2", console: str | None = None,
                    defines: Mapping[str, str] | None = None, include_dirs: Sequence[Path | str] = ()) -> Compiler:
    """The cross compiler for one board, corner and console; defines come after the board's."""
    flags = toolchain.target_flags(board, corner, opt, console)
    return _compiler(f"{toolchain.TARGET_PREFIX}g++", flags, defines, include_dirs)


def host_compiler(corner: Corner, opt: str = "-O2", defines: Mapping[str, str] | None = None,
                  include_dirs: Sequence[Path | str] = ()) -> Compiler:
    return _compiler("g++", toolchain.host_flags(corner, opt), defines, include_dirs)


def _run(argv: list[str]) -> None:
    logger.debug("running %s", " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise BuildError(f"command failed (exit {proc.returncode}): {' '.join(argv)}\n{proc.stderr}")


def compile_objects(compiler: Compiler, sources: Sequence[Path], out_dir: Path) -> list[Path]:
    """Compile each source to out_dir/<stem>.o, in parallel."""
    objects = [out_dir / f"{src.stem}.o" for src in sources]
    if len(set(objects)) != len(objects):
        raise BuildError(f"two sources compile to the same object in {out_dir}: {[s.name for s in sources]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda job: _run(compiler.compile_argv(*job)), zip(sources, objects, strict=True)))
    return objects


def platform_objects(board: Board, corner: Corner, out_dir: Path, *, console: str | None = None,
                     opt: str = "-O2") -> list[Path]:
    """The board's platform files for this corner and console, compiled into out_dir; board_config.hpp is
    written there first when the board's start-up needs it (only board_init.cpp includes it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    compiler = target_compiler(board, corner, opt, console)
    if board_config.needs_board_config(board, console):
        board_config.write_board_config(board, out_dir / "board_config.hpp", console)
        compiler = compiler.including(out_dir)
    return compile_objects(compiler, toolchain.platform_sources(board, corner, console), out_dir)


def cross_build(board: Board, corner: Corner, sources: Sequence[Path], out_elf: Path, *,
                defines: Mapping[str, str] | None = None, include_dirs: Sequence[Path | str] = (),
                console: str | None = None, opt: str = "-O2", platform: Sequence[Path] | None = None,
                extra_link: Sequence[str] = (), extra_libs: Sequence[str] = ()) -> Path:
    """A Cortex-M image: sources linked with the board's platform files (compiled here, or the given
    platform_objects() of the same board, corner and console) and its linker script. out_elf's folder holds
    this image's objects, its script (<elf stem>.ld) and its link map (<elf>.map). extra_link/extra_libs come
    after the board's (a test links a STD=0 image with newlib on purpose)."""
    out_dir = out_elf.parent
    compiler = target_compiler(board, corner, opt, console, defines, include_dirs)
    objects = compile_objects(compiler, list(sources), out_dir)
    if platform is None:
        platform = platform_objects(board, corner, out_dir / "platform", console=console, opt=opt)
    script = linker_script.write_linker_script(board, out_elf.with_suffix(".ld"))
    _run(compiler.link_argv([*objects, *platform], out_elf, script, f"{out_elf}.map", extra_link, extra_libs))
    return out_elf


def host_build(corner: Corner, sources: Sequence[Path], out_exe: Path, *, defines: Mapping[str, str] | None = None,
               include_dirs: Sequence[Path | str] = (), opt: str = "-O2") -> Path:
    """A native program: sources plus the host platform file, built with the host board's flags."""
    compiler = host_compiler(corner, opt, defines, include_dirs)
    host = toolchain.HOST_DIR / "platform.cpp"
    objects = compile_objects(compiler, list(sources), out_exe.parent)
    objects += compile_objects(compiler, [host], out_exe.parent / "platform")
    _run(compiler.link_argv(objects, out_exe))
    return out_exe
