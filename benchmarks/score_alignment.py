"""Score-to-audio alignment: mmalign ``align_score`` against synctoolbox's score-audio recipe.

``python -m benchmarks score_alignment [--quick]``

Pairs (:mod:`mmalign.datasets.rendered_chorales`): a Bach chorale's notes (the
score, as a ``pretty_midi.PrettyMIDI``) against its FluidSynth rendering on
strings (GM 48) or church organ (19) under a seeded smooth tempo curve
(+-20 %), 22050 Hz.  Error per note: |aligned onset - true onset|; median,
% within 50 / 100 ms, worst; seconds per minute of audio (features + DTW).

- mmalign: ``align_score(midi, audio, sr)`` (default ``onset_weight=1``);
- synctoolbox (its ``sync_audio_score_full`` notebook): the score as its
  note table (start, duration, pitch, velocity, instrument) ->
  ``df_to_pitch_features`` -> quantised chroma, ``df_to_pitch_onset_features``
  -> DLNCO; the audio as in ``music_sync`` (tuning, pitch features, DLNCO);
  chroma shift, ``sync_via_mrmsdtw`` (step weights 1.5, 1.5, 2,
  ``threshold_rec=10**6``), ``make_path_strictly_monotonic``.

Full: chorales 0-7 x (strings, organ); quick: chorales 0-1, first 30 s, strings.
"""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np

from .common import machine_info, machine_markdown, write_report
from .music_sync import SR, SYNCTOOLBOX_RATE, map_through_path, synctoolbox_features, synctoolbox_mrmsdtw, table

NAME = "score_alignment"


def pairs(quick: bool):
    from mmalign.datasets.rendered_chorales import GM_PROGRAMS, chorale_names, chorale_score, render_chorale

    out = []
    for i, name in enumerate(chorale_names(2 if quick else 8)):
        score = chorale_score(name, max_seconds=30.0 if quick else None)
        for j, other in enumerate(("strings",) if quick else ("strings", "organ")):
            piece = render_chorale(score, program=GM_PROGRAMS[other], sr=SR, seed=3000 + 10 * i + j)
            out.append((f"{name} score-{other}", score, piece))
    return out


def mmalign_score(score, piece):
    from mmalign.apps.sync import align_score

    res = align_score(score.to_pretty_midi(0), piece.audio, piece.sr)
    order = np.lexsort((res.notes["pitch"], res.notes["score_onset"]))
    return res.notes["audio_onset"][order], res.seconds["features"], res.seconds["dtw"]


def synctoolbox_score(score, piece):
    import pandas as pd
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
    from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO

    n = score.notes
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        ca, da = synctoolbox_features(piece.audio, piece.sr)
        df = pd.DataFrame({"start": n["score_onset"], "duration": n["score_offset"] - n["score_onset"],
                           "pitch": n["pitch"], "velocity": n["velocity"],
                           "instrument": [f"part {k}" for k in n["part"]]})
        f_pitch = df_to_pitch_features(df, feature_rate=SYNCTOOLBOX_RATE)
        cs = quantize_chroma(f_chroma=pitch_to_chroma(f_pitch=f_pitch))
        ds = pitch_onset_features_to_DLNCO(f_peaks=df_to_pitch_onset_features(df), feature_rate=SYNCTOOLBOX_RATE,
                                           feature_sequence_length=cs.shape[1])
        t1 = time.perf_counter()
        wp = synctoolbox_mrmsdtw(cs, ds, ca, da)
        t2 = time.perf_counter()
    path = wp.T / SYNCTOOLBOX_RATE                      # score seconds, audio seconds
    return map_through_path(path, n["score_onset"]), t1 - t0, t2 - t1


def run(quick: bool = False) -> str:
    from .music_sync import summarise

    data = pairs(quick)
    methods = {"mmalign align_score (chroma + DLNCO)": mmalign_score}
    try:
        import synctoolbox  # noqa: F401
        methods["synctoolbox MrMsDTW (score features from the note table)"] = synctoolbox_score
    except ImportError:
        pass
    results = {}
    for name, fn in methods.items():
        fn(data[0][1], data[0][2])                       # warm-up (numba)
        errs, fs, ds, minutes, per = [], 0.0, 0.0, 0.0, []
        for label, score, piece in data:
            onsets, f, d = fn(score, piece)
            e = np.abs(onsets - piece.notes["onset"])
            errs.append(e)
            fs, ds = fs + f, ds + d
            minutes += len(piece.audio) / piece.sr / 60
            per.append({"pair": label, "median_ms": 1000 * float(np.median(e)), "worst_ms": 1000 * float(e.max())})
        results[name] = {**summarise(np.concatenate(errs), fs, ds, minutes), "pairs": per}
        print(f"  {name}: median {results[name]['median_ms']:.1f} ms", flush=True)
    info = machine_info()
    minutes = sum(len(p.audio) / p.sr / 60 for _, _, p in data)
    md = "\n".join([
        "# Score to audio alignment (MIDI notes <-> rendered chorales)", "",
        f"{len(data)} pairs; {next(iter(results.values()))['n_onsets']} notes; {minutes:.1f} minutes of audio. "
        "Error: |aligned onset - true onset| per note. Time: seconds per minute of audio, features + DTW, "
        f"after one warm-up pair.{' Quick run: 30 s excerpts.' if quick else ''}", "",
        table(results), "", machine_markdown(info)])
    write_report(NAME, md, {"quick": quick, "pairs": [label for label, _, _ in data], "results": results,
                            "machine": info, "seeds": {"tempo": "3000 + 10 i + j"}})
    return md
