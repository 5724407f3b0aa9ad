"""Music synchronisation across instruments: mmalign against synctoolbox (MrMsDTW).

``python -m benchmarks music_sync [--quick]``

Pairs with exact ground truth (:mod:`mmalign.datasets.rendered_chorales`):
Bach chorales from music21's corpus, each rendered twice by FluidSynth with
the FluidR3 General MIDI sound font — once on piano, once on strings or on
church organ — each under its own smooth tempo curve (local tempo within
+-20 %, seeded), at 22050 Hz.  For every distinct note onset of rendition A
the aligner's path (interpolated) gives a time in B, compared with the time B
was told to play it.  Reported: median and worst absolute error, % of onsets
within 50 and 100 ms, and seconds per minute of audio (features, DTW and
their sum, over the minutes of both recordings; audio already in memory).

Aligners, all on the same audio in one run:

- mmalign ``synchronize(a, b, sr=22050, features=F)`` for every feature set
  ``F`` of :data:`mmalign.apps.sync.FEATURES` (``"chroma"`` and
  ``"chroma+onset"`` are the feature sets of the issue's "before" figures);
- synctoolbox's audio-audio recipe (its ``sync_audio_audio_full`` notebook):
  tuning estimated per recording (``estimate_tuning``), IIR-filterbank pitch
  features -> quantised chroma, pitch onsets -> DLNCO, chroma shift by
  ``compute_optimal_chroma_shift`` on 1 Hz CENS, ``sync_via_mrmsdtw`` with
  step weights (1.5, 1.5, 2), ``threshold_rec=10**6``, then
  ``make_path_strictly_monotonic``; 50 features per second.

Each aligner runs once per pair after one untimed warm-up on the first pair
(numba compiles).  Full: 8 chorales x 2 pairs (strings, organ); quick: 2
chorales cut to their first 30 s of score, 1 pair each (strings).
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings

import numpy as np

from .common import machine_info, machine_markdown, markdown_table, write_report

NAME = "music_sync"
SR = 22050
SYNCTOOLBOX_RATE = 50


# --------------------------------------------------------------------------- data


def pairs(quick: bool):
    """``[(label, piece_a, piece_b)]``: piano against other instruments, each with its own tempo curve."""
    from mmalign.datasets.rendered_chorales import GM_PROGRAMS, chorale_names, chorale_score, render_chorale

    n = 2 if quick else 8
    others = ("strings",) if quick else ("strings", "organ")
    out = []
    for i, name in enumerate(chorale_names(n)):
        score = chorale_score(name, max_seconds=30.0 if quick else None)
        a = render_chorale(score, program=GM_PROGRAMS["piano"], sr=SR, seed=1000 + i)
        for j, other in enumerate(others):
            b = render_chorale(score, program=GM_PROGRAMS[other], sr=SR, seed=2000 + 10 * i + j,
                               lead_in=0.3 + 0.4 * j)
            out.append((f"{name} piano-{other}", a, b))
    return out


def onset_truth(piece_a, piece_b):
    """Distinct onsets of A and the matching times in B (first note of each onset group)."""
    _, first = np.unique(np.round(piece_a.notes["score_onset"], 6), return_index=True)
    return piece_a.notes["onset"][first], piece_b.notes["onset"][first]


def map_through_path(path_seconds: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Times in B of times ``t`` in A by a ``(K, 2)`` path in seconds: the B times of each A
    frame averaged, then linearly interpolated (the same for every aligner)."""
    xa, inverse = np.unique(path_seconds[:, 0], return_inverse=True)
    yb = np.bincount(inverse, weights=path_seconds[:, 1]) / np.bincount(inverse)
    return np.interp(t, xa, yb)


def errors(path_seconds, piece_a, piece_b) -> np.ndarray:
    ta, tb = onset_truth(piece_a, piece_b)
    return np.abs(map_through_path(path_seconds, ta) - tb)


# --------------------------------------------------------------------------- aligners


def mmalign_aligner(features: str):
    from mmalign.apps.sync import synchronize

    def align(a, b, sr):
        al = synchronize(a, b, sr=sr, features=features)
        sec = al.extras["seconds"]
        return al.times(), sec["features"], sec["dtw"]
    return align


def synctoolbox_features(audio, sr):
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
    from synctoolbox.feature.pitch import audio_to_pitch_features
    from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
    from synctoolbox.feature.utils import estimate_tuning

    tuning = estimate_tuning(audio, sr)
    f_pitch = audio_to_pitch_features(f_audio=audio, Fs=sr, tuning_offset=tuning, feature_rate=SYNCTOOLBOX_RATE)
    chroma = quantize_chroma(f_chroma=pitch_to_chroma(f_pitch=f_pitch))
    peaks = audio_to_pitch_onset_features(f_audio=audio, Fs=sr, tuning_offset=tuning)
    dlnco = pitch_onset_features_to_DLNCO(f_peaks=peaks, feature_rate=SYNCTOOLBOX_RATE,
                                          feature_sequence_length=chroma.shape[1])
    return chroma, dlnco


def synctoolbox_mrmsdtw(chroma_a, dlnco_a, chroma_b, dlnco_b):
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import compute_optimal_chroma_shift, make_path_strictly_monotonic, \
        shift_chroma_vectors
    from synctoolbox.feature.chroma import quantized_chroma_to_CENS

    cens_a = quantized_chroma_to_CENS(chroma_a, 201, 50, SYNCTOOLBOX_RATE)[0]
    cens_b = quantized_chroma_to_CENS(chroma_b, 201, 50, SYNCTOOLBOX_RATE)[0]
    shift = compute_optimal_chroma_shift(cens_a, cens_b)
    chroma_b = shift_chroma_vectors(chroma_b, shift)
    dlnco_b = shift_chroma_vectors(dlnco_b, shift)
    wp = sync_via_mrmsdtw(f_chroma1=chroma_a, f_onset1=dlnco_a, f_chroma2=chroma_b, f_onset2=dlnco_b,
                          input_feature_rate=SYNCTOOLBOX_RATE, step_weights=np.array([1.5, 1.5, 2.0]),
                          threshold_rec=10 ** 6, verbose=False)
    return make_path_strictly_monotonic(wp)


def synctoolbox_aligner(a, b, sr):
    with contextlib.redirect_stdout(io.StringIO()):       # its onset detector prints a dot per pitch
        t0 = time.perf_counter()
        ca, da = synctoolbox_features(a, sr)
        cb, db = synctoolbox_features(b, sr)
        t1 = time.perf_counter()
        wp = synctoolbox_mrmsdtw(ca, da, cb, db)
        t2 = time.perf_counter()
    return wp.T / SYNCTOOLBOX_RATE, t1 - t0, t2 - t1


def aligners() -> dict:
    from mmalign.apps.sync import FEATURES

    out = {f"mmalign {f}": mmalign_aligner(f) for f in FEATURES if f != "mfcc"}
    try:
        import synctoolbox  # noqa: F401
        out["synctoolbox MrMsDTW (chroma + DLNCO)"] = synctoolbox_aligner
    except ImportError:
        warnings.warn("synctoolbox is not installed (pip install synctoolbox): peer column skipped")
    return out


# --------------------------------------------------------------------------- report


def summarise(errs: np.ndarray, feature_s: float, dtw_s: float, minutes: float) -> dict:
    return {"median_ms": 1000 * float(np.median(errs)), "mean_ms": 1000 * float(np.mean(errs)),
            "within_50ms": 100 * float(np.mean(errs <= 0.05)), "within_100ms": 100 * float(np.mean(errs <= 0.1)),
            "worst_ms": 1000 * float(np.max(errs)), "n_onsets": int(len(errs)),
            "features_s_per_min": feature_s / minutes, "dtw_s_per_min": dtw_s / minutes,
            "total_s_per_min": (feature_s + dtw_s) / minutes}


def evaluate(methods: dict, data: list, align_kind: str = "audio") -> dict:
    """Run every method on every pair; per-method summary and per-pair figures."""
    results = {}
    for name, fn in methods.items():
        fn(*_warm_args(data[0], align_kind))                  # warm-up: numba compiles
        all_errs, feat_s, dtw_s, minutes, per_pair = [], 0.0, 0.0, 0.0, []
        for label, a, b in data:
            path, fs, ds = fn(*_warm_args((label, a, b), align_kind))
            e = errors(path, a, b)
            m = (len(a.audio) + len(b.audio)) / a.sr / 60 if align_kind == "audio" else len(b.audio) / b.sr / 60
            all_errs.append(e)
            feat_s += fs
            dtw_s += ds
            minutes += m
            per_pair.append({"pair": label, "median_ms": 1000 * float(np.median(e)),
                             "worst_ms": 1000 * float(e.max()), "seconds": fs + ds, "minutes": m})
        results[name] = {**summarise(np.concatenate(all_errs), feat_s, dtw_s, minutes), "pairs": per_pair}
        print(f"  {name}: median {results[name]['median_ms']:.1f} ms, worst {results[name]['worst_ms']:.0f} ms, "
              f"{results[name]['total_s_per_min']:.2f} s/min", flush=True)
    return results


def _warm_args(item, kind):
    _, a, b = item
    return (a.audio, b.audio, a.sr) if kind == "audio" else (a, b)


def table(results: dict) -> str:
    rows = [[name, r["median_ms"], r["within_50ms"], r["within_100ms"], r["worst_ms"], r["features_s_per_min"],
             r["dtw_s_per_min"], r["total_s_per_min"]] for name, r in results.items()]
    return markdown_table(["aligner", "median error (ms)", "% within 50 ms", "% within 100 ms", "worst (ms)",
                           "features (s/min)", "DTW (s/min)", "total (s/min)"], rows)


def run(quick: bool = False) -> str:
    data = pairs(quick)
    methods = aligners()
    results = evaluate(methods, data)
    info = machine_info()
    n_onsets = next(iter(results.values()))["n_onsets"]
    minutes = sum((len(a.audio) + len(b.audio)) / a.sr / 60 for _, a, b in data)
    md = "\n".join([
        "# Music synchronisation across instruments (audio <-> audio)", "",
        f"{len(data)} pairs ({', '.join(label for label, _, _ in data)}); {n_onsets} note onsets; "
        f"{minutes:.1f} minutes of audio in all (A + B). Error: |path(onset in A) - onset in B|. "
        "Time: seconds per minute of audio (A + B), features and DTW, audio in memory, "
        f"after one warm-up pair.{' Quick run: 30 s excerpts.' if quick else ''}", "",
        table(results), "",
        machine_markdown(info),
    ])
    write_report(NAME, md, {"quick": quick, "pairs": [label for label, _, _ in data], "results": results,
                            "machine": info, "seeds": {"tempo_a": "1000 + i", "tempo_b": "2000 + 10 i + j"}})
    return md
