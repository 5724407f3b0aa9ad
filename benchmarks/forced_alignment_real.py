"""Text-to-speech forced alignment on real recordings, against an acoustic-model reference and aeneas.

``python -m benchmarks forced_alignment_real [--quick]``

Data: the short English utterances of Debian's ``pocketsphinx-testdata``
(``datasets/pocketsphinx_testdata.md``): ``cards/001.wav`` ... ``005.wav``
(transcripts in ``cards/cards.transcription``) and ``tidigits/dhd.2934z.raw``
("two nine three four zero"), 16 kHz mono.  ``numbers.raw`` and
``something.raw`` have no transcript in the package and are left out;
``librivox/`` and ``goforward.raw`` are reserved for an independent check and
never read.

Reference word times: the pocketsphinx acoustic model forced to the
transcript (a JSGF grammar of exactly its words, ``pocketsphinx_batch``
with whole-file cepstral mean normalisation, free optional silence between
words); 10 ms resolution (:mod:`benchmarks._speech_reference`).  A file whose
decoded word sequence differs from the transcript is left out, with the
reason.

Methods, all given the same lower-case transcript:

- ``mmalign``: ``mmalign.apps.forced_alignment.align_text(text, audio, sr)``
  at its defaults, from whatever ``import mmalign`` gives; its end-to-end time
  is the wall clock of ``python -m mmalign subtitle AUDIO TEXT --out DIR
  --format csv --level word --force`` in a subprocess (one untimed run first,
  so numba's cache is warm; median of 3);
- ``mmalign-before``: the same at git revision ``d2e2b1c`` (main when the
  work on real recordings started), extracted with ``git archive`` and run in
  a subprocess; timed the same way (full runs only);
- ``uniform``: the words spread over the detected speech span in proportion
  to their numbers of characters (speech span from mmalign's ``detect_speech``
  where it exists, else frames above -35 dB of the loudest 20 ms frame);
- ``aeneas`` (``aeneas-ng``, own venv, see :mod:`benchmarks._aeneas`): one
  word per line, ``task_language=eng``, defaults otherwise; wall clock of its
  command line (the scored run untimed, then median of 3).

Metrics per recording and over all words (error = method - reference, so
positive is late): median and mean absolute word-start and word-end error in
ms; % of word starts within 20 / 50 / 100 ms; the first word's start error and
the last word's end error (signed), the largest absolute edge error and the
% of recordings with both edges within 60 ms; seconds per recording.  Words
are matched by index.  A wrong-transcript check aligns every recording with
another recording's transcript and prints mmalign's confidence (where
``TextAlignment`` has one) next to its confidence on the right transcript.

Set-up (Debian 12; root):

.. code-block:: bash

    apt-get install -y pocketsphinx pocketsphinx-en-us pocketsphinx-testdata
    apt-get install -y festival-dev libestools-dev libespeak-ng-dev ffmpeg espeak-ng
    python -m venv /opt/aeneas-venv
    /opt/aeneas-venv/bin/pip install numpy aeneas-ng     # MMALIGN_AENEAS_PYTHON overrides the path

A missing tool skips its part with a message saying what to install.
``--quick``: three recordings, one timed run each, no ``mmalign-before`` CLI timing.
"""

from __future__ import annotations

import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from . import _aeneas, _speech_reference as ref_data
from .common import machine_info, machine_markdown, markdown_table, write_report

NAME = "forced_alignment_real"
BEFORE_REVISION = "d2e2b1c"
QUICK_FILES = ("cards/001", "cards/005", "tidigits/dhd.2934z")
WITHIN_MS = (20, 50, 100)
EDGE_MS = 60.0
ENERGY_THRESHOLD_DB = -35.0
# targets of the issue, checked in the verdict lines
TARGET_MEDIAN_START_MS = 20.0
TARGET_WITHIN_50_PCT = 90.0
_REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- scoring (pure)

def _times(words: Sequence) -> np.ndarray:
    """``(n, 2)`` start / end seconds of words given as dicts, Segments or (start, end) pairs."""
    rows = []
    for w in words:
        if isinstance(w, dict):
            rows.append((w["start"], w["end"]))
        elif hasattr(w, "start") and hasattr(w, "end"):
            rows.append((w.start, w.end))
        else:
            start, end = w
            rows.append((start, end))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def word_errors(reference: Sequence, predicted: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Signed start and end errors (predicted - reference, seconds) of words matched by index.

    Parameters
    ----------
    reference, predicted : sequences of words of the same length
        Each word a dict with ``start`` and ``end``, an object with those
        attributes (a Segment) or a ``(start, end)`` pair, in seconds.

    Returns
    -------
    start_errors, end_errors : np.ndarray, shape=(n_words,)

    Examples
    --------
    >>> s, e = word_errors([(0.0, 0.5), (0.5, 1.0)], [(0.01, 0.5), (0.45, 1.1)])
    >>> np.round(s * 1000).tolist(), np.round(e * 1000).tolist()
    ([10.0, -50.0], [0.0, 100.0])
    """
    ref, pred = _times(reference), _times(predicted)
    if len(ref) != len(pred):
        raise ValueError(f"predicted has {len(pred)} words, the reference {len(ref)}: words are matched "
                         "by index, so both must hold the same transcript")
    if len(ref) == 0:
        raise ValueError("reference has no words")
    return pred[:, 0] - ref[:, 0], pred[:, 1] - ref[:, 1]


def error_summary(start_errors, end_errors) -> dict:
    """Median and mean absolute start / end errors (ms) and % of starts within 20 / 50 / 100 ms."""
    s = np.abs(np.asarray(start_errors, dtype=np.float64)) * 1000.0
    e = np.abs(np.asarray(end_errors, dtype=np.float64)) * 1000.0
    if s.size == 0 or s.shape != e.shape:
        raise ValueError(f"need equally many start and end errors, at least one; got {s.size} and {e.size}")
    out = {"words": int(s.size),
           "median_abs_start_ms": float(np.median(s)), "mean_abs_start_ms": float(np.mean(s)),
           "median_abs_end_ms": float(np.median(e)), "mean_abs_end_ms": float(np.mean(e))}
    for ms in WITHIN_MS:
        # a hair of slack so that 50 ms read off a 10 ms grid counts as within 50 ms
        out[f"start_within_{ms}ms_pct"] = float(100.0 * np.mean(s <= ms + 1e-6))
    out["end_within_50ms_pct"] = float(100.0 * np.mean(e <= 50 + 1e-6))
    return out


def edge_errors(reference: Sequence, predicted: Sequence) -> dict:
    """Signed error of the first word's start and of the last word's end, in ms."""
    s, e = word_errors(reference, predicted)
    first, last = float(s[0] * 1000.0), float(e[-1] * 1000.0)
    return {"first_start_ms": first, "last_end_ms": last,
            "both_within_60ms": bool(abs(first) <= EDGE_MS + 1e-6 and abs(last) <= EDGE_MS + 1e-6)}


def overall_summary(per_file: Sequence[dict]) -> dict:
    """Pooled word errors and edge statistics over recordings.

    ``per_file`` holds one dict per recording with ``start_errors`` and
    ``end_errors`` (seconds) and ``edges`` (from :func:`edge_errors`); the word
    statistics pool every word of every recording, the edge statistics count
    recordings.
    """
    if not per_file:
        raise ValueError("no recordings to summarise")
    s = np.concatenate([np.asarray(f["start_errors"], dtype=np.float64) for f in per_file])
    e = np.concatenate([np.asarray(f["end_errors"], dtype=np.float64) for f in per_file])
    out = error_summary(s, e)
    edges = [f["edges"] for f in per_file]
    out["recordings"] = len(per_file)
    out["max_abs_edge_ms"] = float(max(max(abs(d["first_start_ms"]), abs(d["last_end_ms"])) for d in edges))
    out["both_edges_within_60ms_pct"] = float(100.0 * np.mean([d["both_within_60ms"] for d in edges]))
    return out


def uniform_words(words: Sequence[str], span_start: float, span_end: float) -> list[tuple[float, float]]:
    """Spread ``words`` over ``[span_start, span_end]`` seconds in proportion to their lengths in characters.

    Examples
    --------
    >>> uniform_words(["a", "bcd"], 1.0, 2.0)
    [(1.0, 1.25), (1.25, 2.0)]
    """
    if not words:
        raise ValueError("words is empty")
    if not span_end >= span_start:
        raise ValueError(f"span_end must not precede span_start, got {span_start} .. {span_end}")
    lengths = np.array([max(1, len(w)) for w in words], dtype=np.float64)
    edges = span_start + (span_end - span_start) * np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum()
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def energy_speech_span(samples: np.ndarray, sr: int, *, threshold_db: float = ENERGY_THRESHOLD_DB,
                       frame_s: float = 0.02, hop_s: float = 0.01) -> tuple[float, float]:
    """First to last frame whose energy lies within ``threshold_db`` of the loudest frame, in seconds.

    Frames of ``frame_s`` seconds every ``hop_s``; the span runs from the first
    such frame's start to the last one's end (clipped to the signal).
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    frame, hop = max(1, int(round(frame_s * sr))), max(1, int(round(hop_s * sr)))
    if x.size < frame:
        return 0.0, x.size / sr
    n = 1 + (x.size - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    energy = np.mean(x[idx] ** 2, axis=1)
    db = 10.0 * np.log10(energy + 1e-20)
    loud = np.flatnonzero(db >= db.max() + threshold_db)
    return float(loud[0] * hop / sr), float(min(x.size, loud[-1] * hop + frame) / sr)


def verdicts(results: dict) -> list[dict]:
    """The issue's targets as ``{"target", "value", "met"}`` (``met`` None where not measurable).

    ``results`` maps method name to ``{"overall": overall_summary(...),
    "seconds_per_recording": float or None}`` for ``mmalign`` and, where it
    ran, ``aeneas``.
    """
    out = []
    mm = results.get("mmalign")
    if mm is None:
        return [{"target": "mmalign ran", "value": "no", "met": False}]
    o = mm["overall"]
    out.append({"target": f"mmalign median |word-start error| <= {TARGET_MEDIAN_START_MS:.0f} ms",
                "value": f"{o['median_abs_start_ms']:.1f} ms",
                "met": o["median_abs_start_ms"] <= TARGET_MEDIAN_START_MS})
    out.append({"target": f">= {TARGET_WITHIN_50_PCT:.0f} % of word starts within 50 ms",
                "value": f"{o['start_within_50ms_pct']:.1f} %",
                "met": o["start_within_50ms_pct"] >= TARGET_WITHIN_50_PCT})
    out.append({"target": f"every recording's first-word start and last-word end within {EDGE_MS:.0f} ms",
                "value": f"{o['both_edges_within_60ms_pct']:.0f} % of recordings; max |edge error| "
                         f"{o['max_abs_edge_ms']:.0f} ms",
                "met": o["both_edges_within_60ms_pct"] >= 100.0})
    ae = results.get("aeneas")
    mm_s = mm.get("seconds_per_recording")
    ae_s = ae.get("seconds_per_recording") if ae else None
    if mm_s is not None and ae_s is not None:
        out.append({"target": "mmalign end-to-end time per recording <= aeneas's",
                    "value": f"{mm_s:.2f} s vs {ae_s:.2f} s", "met": mm_s <= ae_s})
    else:
        out.append({"target": "mmalign end-to-end time per recording <= aeneas's",
                    "value": "not measured (aeneas or the timing did not run)", "met": None})
    if ae is not None:
        a = ae["overall"]
        better = (o["median_abs_start_ms"] < a["median_abs_start_ms"]
                  and o["median_abs_end_ms"] < a["median_abs_end_ms"])
        out.append({"target": "mmalign more precise than aeneas (lower median |start| and |end| error)",
                    "value": f"start {o['median_abs_start_ms']:.1f} vs {a['median_abs_start_ms']:.1f} ms, "
                             f"end {o['median_abs_end_ms']:.1f} vs {a['median_abs_end_ms']:.1f} ms",
                    "met": better})
    else:
        out.append({"target": "mmalign more precise than aeneas", "value": "aeneas did not run", "met": None})
    return out


# --------------------------------------------------------------------------- methods

def _speech_span(samples: np.ndarray, sr: int) -> tuple[float, float, str]:
    """Speech span for the uniform baseline: mmalign's detector where one exists, else energy."""
    import importlib

    audio = samples.astype(np.float32) / 32768.0
    for module_name in ("mmalign.apps.forced_alignment", "mmalign.features.speech_activity"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        detect = getattr(module, "detect_speech", None)
        if detect is None:
            continue
        found = detect(audio, sr)
        onset, offset = getattr(found, "onset", None), getattr(found, "offset", None)
        if onset is None and isinstance(found, tuple) and len(found) == 2:
            onset, offset = found
        if onset is not None and offset is not None:
            return float(onset), float(offset), f"{module_name}.detect_speech"
    start, end = energy_speech_span(samples, sr)
    return start, end, f"energy > {ENERGY_THRESHOLD_DB:.0f} dB of the loudest 20 ms frame"


# texts that no recording holds, for the wrong-transcript rate
UNRELATED_TEXTS = ("the quick brown fox jumps over the lazy dog",
                   "please call stella and ask her to bring these things with her from the store")
# mmalign's defaults undone one at a time (align_text options), to show what each contributes
ABLATIONS = {"mmalign, edges=False": {"edges": False},
             "mmalign, voice=en (British)": {"voice": "en"},
             "mmalign, features=mfcc (no deltas)": {"features": "mfcc"}}


def _mmalign_api(text: str, samples: np.ndarray, sr: int, **options) -> dict:
    from mmalign.apps.forced_alignment import align_text

    result = align_text(text, samples.astype(np.float32) / 32768.0, sr, **options)
    return {"words": [{"word": w.text, "start": float(w.start), "end": float(w.end),
                       **({"confidence": float(w.confidence)} if getattr(w, "confidence", None) is not None
                          else {})} for w in result.words],
            "confidence": float(result.confidence) if getattr(result, "confidence", None) is not None else None,
            "dtw_cost_per_step": float(result.alignment.cost / len(result.alignment.path()))
            if getattr(result, "alignment", None) is not None and result.alignment.cost is not None else None}


def _mmalign_package_root() -> Path:
    import mmalign

    return Path(mmalign.__file__).resolve().parent.parent


def _cli_run(pythonpath: Path, wav: Path, text_file: Path, out_dir: Path) -> tuple[float, float | None]:
    """Wall seconds of one ``python -m mmalign subtitle ... --format csv --level word --force``, and the
    seconds the command itself reports for loading and aligning (its ``time`` line; None if absent)."""
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    cmd = [sys.executable, "-m", "mmalign", "subtitle", str(wav), str(text_file), "--out", str(out_dir),
           "--format", "csv", "--level", "word", "--force"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out_dir)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mmalign subtitle failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    m = re.search(r"^time\s+([0-9.]+) s", proc.stdout, flags=re.M)
    return seconds, float(m.group(1)) if m else None


def _read_csv_words(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{"word": r["text"], "start": float(r["start"]), "end": float(r["end"])}
                for r in csv.DictReader(f)]


def _time_cli(pythonpath: Path, wav: Path, text: str, workdir: Path, repeats: int) -> dict:
    """Untimed warm-up, then ``repeats`` timed CLI runs; median and best seconds, the CSV's words."""
    workdir.mkdir(parents=True, exist_ok=True)
    text_file = workdir / f"{wav.stem}.txt"
    text_file.write_text(text + "\n", encoding="utf-8")
    _cli_run(pythonpath, wav, text_file, workdir)
    runs = [_cli_run(pythonpath, wav, text_file, workdir) for _ in range(repeats)]
    times = [r[0] for r in runs]
    inner = [r[1] for r in runs if r[1] is not None]
    return {"median_s": statistics.median(times), "best_s": min(times), "times_s": times,
            "reported_align_median_s": statistics.median(inner) if inner else None,
            "words": _read_csv_words(workdir / f"{wav.stem}.csv")}


_BEFORE_DRIVER = """\
import json, sys, wave
import numpy as np
from mmalign.apps.forced_alignment import align_text
out = []
for job in json.load(sys.stdin):
    with wave.open(job["wav"]) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        sr = w.getframerate()
    r = align_text(job["text"], x, sr)
    out.append({"words": [{"word": s.text, "start": float(s.start), "end": float(s.end)} for s in r.words],
                "confidence": float(r.confidence) if getattr(r, "confidence", None) is not None else None})
json.dump(out, sys.stdout)
"""


def _extract_before(dest: Path) -> tuple[Path | None, str]:
    """``git archive`` the package at :data:`BEFORE_REVISION` into ``dest``; (root, "") or (None, why)."""
    try:
        check = subprocess.run(["git", "-C", str(_REPO), "cat-file", "-e", f"{BEFORE_REVISION}^{{commit}}"],
                               capture_output=True, text=True)
    except FileNotFoundError:
        return None, "git is not installed"
    if check.returncode != 0:
        return None, f"git history with revision {BEFORE_REVISION} is not available in {_REPO}"
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", str(_REPO), "archive", BEFORE_REVISION, "mmalign"],
                               stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, capture_output=True)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        return None, f"git archive {BEFORE_REVISION} failed: {untar.stderr.decode()[-300:]}"
    return dest, ""


def _describe_tree(mm_root: Path) -> str:
    """The mmalign measured, as a git revision (plus "with uncommitted changes"), never a local path."""
    try:
        rev = subprocess.run(["git", "-C", str(mm_root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(mm_root), "status", "--porcelain", "--", "mmalign"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an installed copy outside git"
    return f"git {rev}" + (" with uncommitted changes to mmalign/" if dirty else "")


def _same_as_before(mm_root: Path) -> bool | None:
    """Whether the measured package equals :data:`BEFORE_REVISION` (no committed, staged, unstaged or
    untracked change under ``mmalign/``); None when that cannot be told (not a git checkout)."""
    try:
        diff = subprocess.run(["git", "-C", str(mm_root), "diff", "--quiet", BEFORE_REVISION, "--", "mmalign"],
                              capture_output=True)
        untracked = subprocess.run(["git", "-C", str(mm_root), "status", "--porcelain", "--", "mmalign"],
                                   capture_output=True, text=True)
    except FileNotFoundError:
        return None
    if diff.returncode not in (0, 1) or untracked.returncode != 0:
        return None
    return diff.returncode == 0 and not untracked.stdout.strip()


def _run_before(root: Path, jobs: list[dict]) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", _BEFORE_DRIVER], input=json.dumps(jobs), capture_output=True,
                          text=True, env=env, cwd=root)
    if proc.returncode != 0:
        raise RuntimeError(f"mmalign-before driver failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- run

def _score(reference: dict, predicted: list[dict]) -> dict:
    s, e = word_errors(reference["words"], predicted)
    return {"start_errors": s.tolist(), "end_errors": e.tolist(), "summary": error_summary(s, e),
            "edges": edge_errors(reference["words"], predicted), "words": predicted}


def _md_verdict(v: dict) -> str:
    mark = {True: "**met**", False: "**not met**", None: "not measured"}[v["met"]]
    return f"- {v['target']}: {v['value']} — {mark}"


def run(quick: bool = False) -> str:
    repeats = 1 if quick else 3
    notes: list[str] = []
    setup = [
        f"`{ref_data.INSTALL}`",
        "`apt-get install -y festival-dev libestools-dev libespeak-ng-dev ffmpeg espeak-ng`",
        "`python -m venv /opt/aeneas-venv && /opt/aeneas-venv/bin/pip install numpy aeneas-ng` "
        f"(`{_aeneas.PYTHON_ENV}` points elsewhere)",
    ]
    missing = ref_data.missing_tools()
    if missing:
        md = "\n".join([f"# Forced alignment on real recordings ({'quick' if quick else 'full'})", "",
                        "**Skipped**: missing " + "; ".join(missing) + ".", "",
                        f"Install with `{ref_data.INSTALL}`.", ""])
        write_report(NAME, md, {"skipped": missing, "install": ref_data.INSTALL})
        return md

    used, left_out = ref_data.utterances()
    if quick:
        used = [u for u in used if u.name in QUICK_FILES]
    refs = {}
    for u in used:
        r = ref_data.reference(u)
        if r["ok"]:
            refs[u.name] = r
        else:
            left_out.append({"file": str(u.path), "reason": r["reason"]})
    used = [u for u in used if u.name in refs]

    methods: dict[str, dict] = {"mmalign": {}, **{name: {} for name in ABLATIONS},
                                "mmalign-before": {}, "uniform": {}, "aeneas": {}}
    timing: dict[str, dict] = {"mmalign": {}, "mmalign-before": {}, "aeneas": {}}
    extras: dict[str, dict] = {}
    repeatability: dict[str, float] = {}     # largest spread of a word time over repeated API calls, ms
    calls: dict[str, list] = {}              # every API call's words, per recording
    ae_version, ae_why = _aeneas.version()
    if ae_version is None:
        notes.append(f"aeneas skipped: {ae_why}. Install: {_aeneas.INSTALL}")
    mm_root = _mmalign_package_root()
    import mmalign

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fa-real-") as tmp_name:
        tmp = Path(tmp_name)
        wavs = {}
        for u in used:
            samples = ref_data.load_audio(u.path)
            wav = tmp / "audio" / (u.name.replace("/", "_") + ".wav")
            wav.parent.mkdir(exist_ok=True)
            ref_data.write_wav(wav, samples)
            wavs[u.name] = (wav, samples)

        # mmalign, current code: Python API (scored), CLI (timed)
        for u in used:
            wav, samples = wavs[u.name]
            out = _mmalign_api(u.text, samples, ref_data.SR)
            methods["mmalign"][u.name] = _score(refs[u.name], out["words"])
            # the same call again: eSpeak NG's rendering varies a little from call to call
            again = [_mmalign_api(u.text, samples, ref_data.SR)["words"] for _ in range(repeats)]
            calls[u.name] = [out["words"], *again]
            stack = np.stack([_times(w) for w in calls[u.name]])
            repeatability[u.name] = float(np.max(stack.max(axis=0) - stack.min(axis=0)) * 1000)
            extras.setdefault(u.name, {})["mmalign_confidence"] = out["confidence"]
            extras[u.name]["mmalign_dtw_cost_per_step"] = out["dtw_cost_per_step"]
            cli = _time_cli(mm_root, wav, u.text, tmp / "cli" / u.name.replace("/", "_"), repeats)
            api_t, cli_t = _times(out["words"]), _times(cli["words"])
            cli["max_abs_diff_from_api_ms"] = float(np.max(np.abs(api_t - cli_t)) * 1000) \
                if api_t.shape == cli_t.shape else None
            timing["mmalign"][u.name] = cli

        # mmalign with one of its choices undone (Python API, scored only; after the scored default run:
        # eSpeak NG's rendering depends on what it rendered before in the process)
        for name, options in ABLATIONS.items():
            for u in used:
                out = _mmalign_api(u.text, wavs[u.name][1], ref_data.SR, **options)
                methods[name][u.name] = _score(refs[u.name], out["words"])

        # mmalign at the revision the work started from
        root, why = _extract_before(tmp / "before")
        if root is None:
            notes.append(f"mmalign-before skipped: {why}")
            methods.pop("mmalign-before")
        else:
            jobs = [{"wav": str(wavs[u.name][0]), "text": u.text} for u in used]
            for u, out in zip(used, _run_before(root, jobs)):
                methods["mmalign-before"][u.name] = _score(refs[u.name], out["words"])
                extras[u.name]["mmalign_before_confidence"] = out["confidence"]
            if not quick:
                for u in used:
                    timing["mmalign-before"][u.name] = _time_cli(
                        root, wavs[u.name][0], u.text, tmp / "cli-before" / u.name.replace("/", "_"), repeats)
            else:
                notes.append("--quick: mmalign-before is scored, not timed")

        # uniform baseline
        for u in used:
            wav, samples = wavs[u.name]
            start, end, how = _speech_span(samples, ref_data.SR)
            pred = [{"word": w, "start": a, "end": b} for w, (a, b) in zip(u.words, uniform_words(u.words, start, end))]
            methods["uniform"][u.name] = _score(refs[u.name], pred)
            extras[u.name]["uniform_span"] = [start, end]
            extras[u.name]["uniform_span_from"] = how

        # aeneas
        if ae_version is None:
            methods.pop("aeneas")
        else:
            for u in used:
                wav = wavs[u.name][0]
                work = tmp / "aeneas" / u.name.replace("/", "_")
                words, _ = _aeneas.align(wav, u.words, work)
                methods["aeneas"][u.name] = _score(refs[u.name], words)
                times = [_aeneas.align(wav, u.words, work)[1] for _ in range(repeats)]
                timing["aeneas"][u.name] = {"median_s": statistics.median(times), "best_s": min(times),
                                            "times_s": times}

        # wrong transcript: recording i with recording i+1's transcript
        wrong, all_wrong = [], []
        if len(used) > 1:
            for i, u in enumerate(used):
                other = next(v for v in used[i + 1:] + used[:i] if v.text != u.text)
                out = _mmalign_api(other.text, wavs[u.name][1], ref_data.SR)
                wrong.append({"file": u.name, "right_text": u.text, "wrong_text": other.text,
                              "right_confidence": extras[u.name]["mmalign_confidence"],
                              "wrong_confidence": out["confidence"],
                              "right_dtw_cost_per_step": extras[u.name]["mmalign_dtw_cost_per_step"],
                              "wrong_dtw_cost_per_step": out["dtw_cost_per_step"]})
            # every other recording's transcript and two unrelated sentences, for a rate
            for u in used:
                for text in [v.text for v in used if v.text != u.text] + list(UNRELATED_TEXTS):
                    out = _mmalign_api(text, wavs[u.name][1], ref_data.SR)
                    all_wrong.append({"file": u.name, "wrong_text": text, "confidence": out["confidence"]})
    wall = time.perf_counter() - t_start

    # ------------------------------------------------------------------ summaries
    per_method = {}
    for m, files in methods.items():
        if not files:
            continue
        seconds = None
        if timing.get(m):
            seconds = float(np.mean([timing[m][f]["median_s"] for f in files if f in timing[m]]))
        per_method[m] = {"overall": overall_summary(list(files.values())), "seconds_per_recording": seconds}
    if "aeneas" in methods and "mmalign" in methods:
        mm_s = np.concatenate([np.abs(methods["mmalign"][f]["start_errors"]) for f in methods["mmalign"]])
        ae_s = np.concatenate([np.abs(methods["aeneas"][f]["start_errors"]) for f in methods["mmalign"]])
        per_method["mmalign"]["start_closer_than_aeneas_pct"] = float(100 * np.mean(mm_s < ae_s))
        per_method["mmalign"]["start_tied_with_aeneas_pct"] = float(100 * np.mean(mm_s == ae_s))
    checks = verdicts(per_method)
    per_call = [overall_summary([_score(refs[f], calls[f][k]) for f in calls]) for k in range(repeats + 1)]
    same_code = _same_as_before(mm_root)
    has_conf = any(w["right_confidence"] is not None for w in wrong)

    # ------------------------------------------------------------------ Markdown
    n_words = sum(len(refs[u.name]["words"]) for u in used)
    audio_s = sum(refs[u.name]["duration"] for u in used)
    lines = [f"# Forced alignment on real recordings ({'quick' if quick else 'full'})", "",
             f"{len(used)} recordings of Debian pocketsphinx-testdata, {n_words} words, {audio_s:.1f} s of audio. "
             "Reference: pocketsphinx en-us acoustic model forced to the transcript "
             f"(`pocketsphinx_batch` {' '.join(ref_data.DECODER_OPTIONS)}; 10 ms frames). "
             "Errors are method − reference (positive: late), words matched by index. "
             f"mmalign: {_describe_tree(mm_root)} (version {getattr(mmalign, '__version__', '?')}); "
             f"mmalign-before: git {BEFORE_REVISION}; aeneas: {ae_version or 'not run'}.", ""]
    cols = ["method", "words", "median \\|start\\| ms", "mean \\|start\\| ms", "median \\|end\\| ms",
            "mean \\|end\\| ms", "starts ≤20 ms %", "≤50 ms %", "≤100 ms %", "max \\|edge\\| ms",
            "both edges ≤60 ms %", "s / recording"]
    rows = []
    for m, d in per_method.items():
        o = d["overall"]
        rows.append([m, o["words"], o["median_abs_start_ms"], o["mean_abs_start_ms"], o["median_abs_end_ms"],
                     o["mean_abs_end_ms"], o["start_within_20ms_pct"], o["start_within_50ms_pct"],
                     o["start_within_100ms_pct"], o["max_abs_edge_ms"], o["both_edges_within_60ms_pct"],
                     d["seconds_per_recording"]])
    lines += ["## Overall", "", markdown_table(cols, rows), "",
              "s / recording: mean over recordings of the median end-to-end wall time "
              f"({repeats} timed run{'s' if repeats > 1 else ''} after an untimed one): "
              "`python -m mmalign subtitle ... --format csv --level word --force` for mmalign "
              "(and mmalign-before), `python -m aeneas.tools.execute_task` for aeneas; the uniform baseline "
              "is not timed.", ""]
    if "start_closer_than_aeneas_pct" in per_method.get("mmalign", {}):
        pm = per_method["mmalign"]
        lines += [f"Word by word, mmalign's start is closer to the reference than aeneas's for "
                  f"{pm['start_closer_than_aeneas_pct']:.0f} % of the words (ties "
                  f"{pm['start_tied_with_aeneas_pct']:.0f} %).", ""]

    rows = []
    for u in used:
        for m, files in methods.items():
            s = files[u.name]["summary"]
            rows.append([u.name, m, s["words"], s["median_abs_start_ms"], s["mean_abs_start_ms"],
                         s["median_abs_end_ms"], s["mean_abs_end_ms"], s["start_within_50ms_pct"]])
    lines += ["## Per recording", "",
              markdown_table(["recording", "method", "words", "median \\|start\\| ms", "mean \\|start\\| ms",
                              "median \\|end\\| ms", "mean \\|end\\| ms", "starts ≤50 ms %"], rows), ""]

    ms = list(methods)
    rows = []
    for u in used:
        row = [u.name]
        for m in ms:
            e = methods[m][u.name]["edges"]
            row += [f"{e['first_start_ms']:+.0f} / {e['last_end_ms']:+.0f}" + ("" if e["both_within_60ms"] else " ✗")]
        rows.append(row)
    lines += ["## Edges", "",
              "First word's start error / last word's end error, ms, signed (✗: one of them beyond "
              f"{EDGE_MS:.0f} ms).", "",
              markdown_table(["recording", *ms], rows), ""]

    tm = [m for m in ("mmalign", "mmalign-before", "aeneas") if timing.get(m)]
    rows = []
    for u in used:
        row = [u.name, refs[u.name]["duration"]]
        for m in tm:
            t = timing[m].get(u.name)
            inner = t.get("reported_align_median_s") if t else None
            row += [(f"{t['median_s']:.2f} (best {t['best_s']:.2f})" + (f"; align {inner:.1f}" if inner is not None
                                                                      else "")) if t else "—"]
        rows.append(row)
    lines += ["## End-to-end time", "",
              "Wall seconds per recording, median of the timed runs (best in brackets); for the mmalign "
              "CLI, `align` is the median of the seconds it reports itself for loading the audio and "
              "aligning (its `time` line, 0.1 s resolution): the rest is starting Python and importing.", "",
              markdown_table(["recording", "audio s", *tm], rows), ""]
    diffs = [timing["mmalign"][u.name].get("max_abs_diff_from_api_ms") for u in used]
    spread = max(repeatability.values())
    lines += [f"**Repeatability.** {repeats + 1} calls of `align_text` on the same input give word times "
              f"that differ by up to {spread:.1f} ms (largest spread of one word's start or end; per "
              "recording: " + ", ".join(f"{k} {v:.1f}" for k, v in repeatability.items()) + " ms): "
              "eSpeak NG's synthetic rendering is not identical from call to call. The tables score "
              "the first call; over the calls, mmalign's overall median |start| error was "
              + ", ".join(f"{c['median_abs_start_ms']:.1f}" for c in per_call) + " ms and its starts within "
              "50 ms " + ", ".join(f"{c['start_within_50ms_pct']:.0f}" for c in per_call) + " %."]
    if diffs and all(d is not None for d in diffs):
        lines += [f"The CLI's CSV (1 ms resolution, a fresh process) differs from that first API call by "
                  f"up to {max(diffs):.1f} ms (compare the run-to-run spread)."]
    lines += [""]

    lines += ["## Wrong transcript", ""]
    if wrong:
        if not has_conf:
            lines += ["`TextAlignment` has no `confidence` attribute in this version: **no confidence**. "
                      "For information only, the DTW cost per path step (lower: better match) is shown.", ""]
        rows = [[w["file"], w["right_confidence"] if has_conf else "no confidence",
                 w["wrong_text"], w["wrong_confidence"] if has_conf else "no confidence"]
                + ([] if has_conf else [w["right_dtw_cost_per_step"], w["wrong_dtw_cost_per_step"]]) for w in wrong]
        lines += [markdown_table(["recording", "confidence, right text", "wrong text (another recording's)",
                                  "confidence, wrong text"]
                                 + ([] if has_conf else ["DTW cost/step, right", "DTW cost/step, wrong"]), rows), ""]
        confidences = [w["confidence"] for w in all_wrong if w["confidence"] is not None]
        if confidences:
            from mmalign.apps.forced_alignment import LOW_CONFIDENCE

            rights = [w["right_confidence"] for w in wrong]
            flagged = sum(c < LOW_CONFIDENCE for c in confidences)
            lines += [f"Every recording with every other recording's transcript and {len(UNRELATED_TEXTS)} "
                      f"unrelated sentences ({len(confidences)} wrong transcripts): {flagged} "
                      f"({100 * flagged / len(confidences):.0f} %) under the warning threshold "
                      f"{LOW_CONFIDENCE}; their confidences: median {np.median(confidences):.2f}, "
                      f"max {max(confidences):.2f}. The right transcripts: {min(rights):.2f} to "
                      f"{max(rights):.2f}.", ""]
    else:
        lines += ["Needs at least two recordings.", ""]

    lines += ["## Verdicts (targets of the issue)", "", *[_md_verdict(v) for v in checks], ""]
    spans = {extras[u.name]["uniform_span_from"] for u in used}
    lines += ["## Notes", "",
              f"- uniform baseline speech span: {', '.join(sorted(spans))}."]
    if same_code:
        lines += [f"- The mmalign being measured has no changes under `mmalign/` since {BEFORE_REVISION}: "
                  "`mmalign` and `mmalign-before` run the same code and differ only by eSpeak NG's "
                  "call-to-call variation."]
    lines += [f"- {n}" for n in notes]
    lines += [f"- left out: `{x['file']}`: {x['reason']}" for x in left_out]
    lines += [f"- reserved, never read: {', '.join(f'`{r}`' for r in ref_data.RESERVED)} "
              "(independent check).", "",
              "## Set-up", "", *[f"- {s}" for s in setup], "",
              machine_markdown(machine_info()).rstrip(), f"- Wall time of the measurements: {wall:.0f} s", ""]
    md = "\n".join(lines)

    data = {"quick": quick, "machine": machine_info(), "mmalign_tree": _describe_tree(mm_root),
            "before_revision": BEFORE_REVISION, "aeneas_version": ae_version, "decoder_options":
            list(ref_data.DECODER_OPTIONS), "references": refs, "left_out": left_out,
            "methods": methods, "timing": timing, "per_method": per_method, "wrong_transcript": wrong,
            "wrong_transcript_all": all_wrong,
            "extras": extras, "repeatability_ms": repeatability, "per_call_overall": per_call,
            "same_code_as_before": same_code, "verdicts": checks, "notes": notes, "setup": setup, "wall_seconds": wall}
    write_report(NAME, md, data)
    return md
