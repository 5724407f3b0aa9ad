"""aeneas (the ``aeneas-ng`` fork on PyPI) as a word-level forced aligner, run in its own venv.

aeneas needs its own numpy and C extensions, so it lives in a separate virtual
environment and is driven through its command line, as a user would:

.. code-block:: bash

    apt-get install -y festival-dev libestools-dev libespeak-ng-dev ffmpeg espeak-ng
    python -m venv /opt/aeneas-venv
    /opt/aeneas-venv/bin/pip install numpy aeneas-ng

``MMALIGN_AENEAS_PYTHON`` names another interpreter that can ``import aeneas``.
One word per line of the text file gives one fragment per word.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

PYTHON_ENV = "MMALIGN_AENEAS_PYTHON"
DEFAULT_PYTHON = "/opt/aeneas-venv/bin/python"
CONFIG = "task_language=eng|is_text_type=plain|os_task_file_format=json"
INSTALL = ("apt-get install -y festival-dev libestools-dev libespeak-ng-dev ffmpeg espeak-ng && "
           "python -m venv /opt/aeneas-venv && /opt/aeneas-venv/bin/pip install numpy aeneas-ng "
           f"(or point {PYTHON_ENV} at a Python that can import aeneas)")


def python() -> str:
    """The interpreter that runs aeneas."""
    return os.environ.get(PYTHON_ENV) or DEFAULT_PYTHON


def version() -> tuple[str | None, str]:
    """(aeneas version, "") where it runs, else (None, why not)."""
    exe = python()
    if not Path(exe).exists():
        return None, f"no Python at {exe}"
    code = ("import importlib, aeneas, numpy\n"
            "def has(m):\n"
            "    try:\n"
            "        importlib.import_module(m)\n"
            "        return 'yes'\n"
            "    except ImportError:\n"
            "        return 'no'\n"
            "print(aeneas.__version__, numpy.__version__, has('aeneas.cdtw.cdtw'), has('aeneas.cmfcc.cmfcc'),"
            " has('aeneas.cew.cew'))\n")
    proc = subprocess.run([exe, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return None, f"{exe} cannot import aeneas: {last[0]}"
    ver, np_ver, cdtw, cmfcc, cew = proc.stdout.split()
    return f"{ver} (numpy {np_ver}; C extensions: dtw {cdtw}, mfcc {cmfcc}, espeak {cew})", ""


def parse_sync_map(data: dict) -> list[dict]:
    """``[{"word", "start", "end"}]`` from an aeneas JSON sync map (one fragment per word)."""
    out = []
    for f in data["fragments"]:
        out.append({"word": " ".join(f["lines"]).strip(), "start": float(f["begin"]), "end": float(f["end"])})
    return out


def align(wav: Path, words: list[str], workdir: Path) -> tuple[list[dict], float]:
    """Align ``words`` (one fragment each) to ``wav``; (words with times, wall seconds of the run)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    text = workdir / "words.txt"
    text.write_text("\n".join(words) + "\n", encoding="utf-8")
    out = workdir / "syncmap.json"
    if out.exists():
        out.unlink()
    cmd = [python(), "-m", "aeneas.tools.execute_task", str(wav), str(text), CONFIG, str(out)]
    env = dict(os.environ, PYTHONIOENCODING="UTF-8")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"aeneas failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    return parse_sync_map(json.loads(out.read_text())), seconds
