"""mmalign imports downward only (DESIGN.md, "Layout"), and ``import mmalign`` stays light.

Every module of the package is read with ``ast``; each of its imports (at module level,
inside functions, under ``TYPE_CHECKING``; relative or absolute) is mapped to a *room*
and checked against :data:`MAY_IMPORT`. Moving a file from one room to another only
needs :data:`ROOMS` updated.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmalign

PACKAGE_DIR = Path(mmalign.__file__).resolve().parent
TOP = "mmalign"  # the package's __init__: lazy names for users; it may import anything

# Module-path prefix -> room; the longest prefix that matches whole dotted components wins.
ROOMS: dict[str, str] = {
    "mmalign._version": "utils",
    "mmalign.utils": "utils",
    "mmalign.alignment": "alignment",
    "mmalign.aligner": "aligner",
    "mmalign.metrics": "metrics",
    "mmalign.nn": "nn",
    "mmalign.warping": "warping",
    "mmalign.clustering": "clustering",
    "mmalign.projection": "projection",
    "mmalign.attention": "attention",
    "mmalign.features": "features",
    "mmalign.datasets": "datasets",
    "mmalign.evaluation": "evaluation",
    "mmalign.plot": "plot",
    "mmalign.apps": "apps",
    "mmalign.cli": "cli",
    "mmalign.__main__": "cli",
}

_BELOW_APPS = {"utils", "alignment", "aligner", "metrics", "nn", "warping", "clustering", "projection",
               "attention", "features", "datasets", "evaluation", "plot"}

# Room -> the other rooms it may import. No room may import the top-level package.
MAY_IMPORT: dict[str, set[str]] = {
    "utils": set(),
    "alignment": {"utils"},
    "aligner": {"alignment", "utils"},
    "metrics": {"alignment", "utils"},
    "features": {"utils"},
    "plot": {"alignment", "utils"},
    # building blocks and the training loop; the audio embedder reads MFCCs
    "nn": {"aligner", "alignment", "features", "utils"},
    # warping knows no model
    "warping": {"aligner", "alignment", "utils"},
    # clustering: distances and averages from warping, nothing above it
    "clustering": {"warping", "aligner", "alignment", "utils"},
    "projection": {"warping", "nn", "aligner", "alignment", "utils"},
    "attention": {"nn", "warping", "projection", "metrics", "features", "aligner", "alignment",
                  "utils"},
    # datasets know no metric
    "datasets": {"warping", "features", "alignment", "utils"},
    "evaluation": {"datasets", "features", "attention", "projection", "warping", "nn", "metrics",
                   "aligner", "alignment", "utils"},
    "apps": _BELOW_APPS,
    "cli": _BELOW_APPS | {"apps"},
}


# Upward imports not fixed yet, with the reason; the test fails on any other, and on an entry
# here that no longer exists (delete it then).
KNOWN_UPWARD: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def room_of(module: str) -> str | None:
    if module == TOP:
        return TOP
    matches = [p for p in ROOMS if module == p or module.startswith(p + ".")]
    return ROOMS[max(matches, key=len)] if matches else None


def imports_of(module: str) -> set[str]:
    """The mmalign modules ``module`` imports anywhere in its file."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in MODULES else source)
    return {m for m in found if m == TOP or m.startswith(TOP + ".")}


def upward_imports() -> list[str]:
    arrows = []
    for module in MODULES:
        room = room_of(module)
        if room == TOP:
            continue
        for target in sorted(imports_of(module)):
            target_room = room_of(target)
            if target_room not in ({room} | MAY_IMPORT.get(room, set())):
                arrows.append(f"{module} -> {target} ({room} -> {target_room})")
    return arrows


def test_every_module_has_a_room():
    assert [m for m in MODULES if room_of(m) is None] == []
    assert set(ROOMS.values()) <= set(MAY_IMPORT)


def test_rooms_may_import_only_known_rooms():
    for room, allowed in MAY_IMPORT.items():
        assert allowed <= set(MAY_IMPORT), room
        assert room not in allowed and TOP not in allowed, room


def test_the_walk_sees_relative_absolute_and_function_level_imports():
    assert "mmalign.warping.dtw" in imports_of("mmalign.warping.aligner")  # from .dtw import ...
    assert "mmalign.alignment" in imports_of("mmalign.warping.dtw")  # from ..alignment import ...
    assert "mmalign.warping.batch" in imports_of("mmalign.warping.dtw")  # inside _solve
    assert "mmalign.evaluation" in imports_of("mmalign")  # TYPE_CHECKING: from . import evaluation


def test_imports_point_down_only():
    arrows = upward_imports()
    new = [a for a in arrows if a not in KNOWN_UPWARD]
    assert not new, "upward imports:\n" + "\n".join(new)
    gone = [a for a in KNOWN_UPWARD if a not in arrows]
    assert not gone, "fixed, delete from KNOWN_UPWARD:\n" + "\n".join(gone)


def _run(code: str) -> subprocess.CompletedProcess:
    paths = [str(PACKAGE_DIR.parent), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


_HEAVY = ("torch", "sklearn", "numba")
_LOADED = f"print(sorted(m for m in {_HEAVY!r} if m in sys.modules))"


def test_import_mmalign_loads_neither_torch_nor_sklearn():
    done = _run(f"import sys, mmalign\n{_LOADED}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_the_estimator_base_loads_neither_torch_nor_sklearn():
    # every aligner imports mmalign.aligner: DTW must stay light (scikit-learn's contract is
    # implemented there, not inherited; torch is imported where a tensor is handled)
    done = _run(f"import sys, mmalign\nmmalign.DTW\nimport mmalign.aligner\n{_LOADED}")
    assert done.returncode == 0, done.stderr
    assert "torch" not in done.stdout and "sklearn" not in done.stdout, done.stdout


def test_lazy_names_still_work():
    done = _run("import numpy as np, mmalign\n"
                "from mmalign import DTW\n"
                "assert DTW is mmalign.warping.DTW\n"
                "assert mmalign.dtw(np.arange(3.0), np.arange(3.0)) == 0.0\n"
                "assert callable(mmalign.metrics.mean_absolute_deviation)\n"
                "assert mmalign.evaluation.EmbeddingTable.__name__ == 'EmbeddingTable'\n"
                "assert set(mmalign.__all__) <= set(dir(mmalign))\n"
                "assert isinstance(mmalign.__version__, str)\n")
    assert done.returncode == 0, done.stderr


_HELP = ("import sys, runpy\n"
         "sys.argv = ['mmalign', '--help']\n"
         "try:\n"
         "    {call}\n"
         "except SystemExit as stop:\n"
         "    assert stop.code in (0, None), stop.code\n"
         "print(sorted(m for m in ('torch',) if m in sys.modules))\n")


@pytest.mark.parametrize("call", [
    "runpy.run_module('mmalign', run_name='__main__')",  # python -m mmalign --help
    "import mmalign.cli; mmalign.cli.main(['--help'])",
])
def test_cli_help_does_not_import_torch(call):
    done = _run(_HELP.format(call=call))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]"), done.stdout[-500:]
