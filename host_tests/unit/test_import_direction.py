"""The package reads as the data flow: model -> quant -> codegen -> build -> run -> judge -> matrix.

A stage module imports the shared base modules, its own stage and earlier stages only; the base imports
nothing of the stages; the entry points (the CLI, the SCons graph, the README generator) may import any
stage and nothing imports them. Every import counts, also the ones inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

from qmcu.paths import PACKAGE_DIR

STAGES = ("model", "quant", "codegen", "build", "run", "judge", "matrix")
BASE = {"__init__", "errors", "paths", "atomic", "interrupt", "seals", "buildlock", "boards", "modelref", "options"}
ENTRY = {"cli", "sconsbuild", "readme"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _imports(path: Path, module: str) -> set[str]:
    """The qmcu modules the file of `module` imports, as dotted names below qmcu (relative imports resolved)."""
    here = module.split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("qmcu.") for a in node.names if a.name.startswith("qmcu.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == "qmcu" or (node.module or "").startswith("qmcu."):
                target = (node.module or "").removeprefix("qmcu").removeprefix(".")
            else:
                continue
            for alias in node.names:  # `from qmcu.quant import reference` imports the module qmcu.quant.reference
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if (PACKAGE_DIR / sub.replace(".", "/")).with_suffix(".py").is_file() else target)
    return {name for name in found if name}


def _layer(module: str) -> tuple[str, int]:
    top = module.split(".")[0]
    if top in STAGES:
        return "stage", STAGES.index(top)
    if top in BASE:
        return "base", -1
    if top in ENTRY:
        return "entry", len(STAGES)
    raise AssertionError(f"qmcu.{module} is in no layer: put it in a stage folder, or add it to BASE or ENTRY here")


def _against_the_flow(files: dict[str, Path]) -> list[str]:
    wrong = []
    for module, path in files.items():
        kind, rank = _layer(module)
        for dep in sorted(_imports(path, module)):
            dep_kind, dep_rank = _layer(dep)
            if dep_kind == "entry" and kind != "entry":
                wrong.append(f"{module} imports the entry point {dep}")
            elif kind == "base" and dep_kind != "base":
                wrong.append(f"base module {module} imports the stage module {dep}")
            elif kind == "stage" and dep_rank > rank:
                wrong.append(f"{module} ({STAGES[rank]}) imports {dep}, a later stage ({STAGES[dep_rank]})")
    return wrong


def test_imports_point_one_way() -> None:
    wrong = _against_the_flow({_module(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))})
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)


def test_every_stage_folder_says_what_it_holds() -> None:
    for stage in STAGES:
        init = PACKAGE_DIR / stage / "__init__.py"
        assert init.is_file(), f"{stage}/ has no __init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and doc.startswith(f"Stage {STAGES.index(stage) + 1}, "), f"{stage}/__init__.py: say its place"
    assert not [p.name for p in PACKAGE_DIR.iterdir() if p.is_dir() and p.name not in STAGES
                and not p.name.startswith((".", "__"))], "a folder that is not a stage"


def test_the_rule_sees_a_backward_import(tmp_path: Path) -> None:
    """The check above can fail: a quant module importing the judge and the CLI is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text("from qmcu.judge import verdict\nfrom ..matrix.cells import Cell\nfrom .. import cli\n"
                     "from qmcu.quant import reference\nfrom qmcu import errors\n")
    assert _imports(probe, "quant.probe") == {"judge.verdict", "matrix.cells", "cli", "quant.reference", "errors"}
    assert _against_the_flow({"quant.probe": probe}) == [
        "quant.probe imports the entry point cli",
        "quant.probe (quant) imports judge.verdict, a later stage (judge)",
        "quant.probe (quant) imports matrix.cells, a later stage (matrix)",
    ]
    assert "base module options imports the stage module judge.verdict" in _against_the_flow({"options": probe})
