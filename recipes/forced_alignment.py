"""Text <-> audio forced alignment: word and sentence times of a text in a recording, and subtitles.

The "recording" is eSpeak NG reading a few paragraphs in one voice and at one
rate; the aligner (:func:`mmalign.apps.forced_alignment.align_text`) knows only the
text and renders it itself in *another* voice at *another* rate, then aligns
the two renderings with DTW on MFCCs and maps its own word boundaries onto the
recording.  Ground truth: the recording's own word events from the
synthesiser (:func:`mmalign.features.speech.synthesize_speech`).  Three
conditions:

- ``clean``          British female voice (``en-gb+f3``), 140 words/min;
- ``noise 20 dB``    American male voice (``en-us+m3``), 190 words/min, white noise at 20 dB SNR;
- ``noise+reverb``   British voice (``en-gb``), 160 words/min, synthetic room reverb
  (RT60 0.5 s) and white noise at 10 dB SNR.

The aligner always uses ``voice="en-us"`` at 175 words/min.  Error: the
absolute difference, in milliseconds, between estimated and true word
boundaries (start and end of every word).  Baselines, what a user would
otherwise do with the same synthetic rendering:

- ``librosa DTW``  ``librosa.feature.mfcc`` with its defaults (20 coefficients,
  93 ms window, 23 ms hop) and ``librosa.sequence.dtw``, boundaries mapped
  through its path the same way;
- ``linear``       stretch the synthetic timeline uniformly onto the recording.

Writes to ``--out``: ``forced_alignment.png`` (waveform excerpt with true and
estimated boundaries; error distributions), ``forced_alignment.srt`` /
``.vtt`` (sentence cues) and ``forced_alignment_words.csv`` for the clean
condition, and that condition's recording and text
(``forced_alignment_recording.wav``, ``forced_alignment.txt``), which
``mmalign subtitle`` takes as they are.

Set-up: ``pip install -c constraints.txt -e ".[speech]"`` (the eSpeak NG
library comes from the ``espeakng-loader`` wheel).  Usage::

    python recipes/forced_alignment.py --out /tmp/fa            # three paragraphs, ~1 min of speech each
    python recipes/forced_alignment.py --out /tmp/fa --quick    # one paragraph
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mmalign.features.speech import espeak_version, synthesize_speech
from mmalign.apps.forced_alignment import align_text

FIGURE = "forced_alignment.png"
ALIGNER_VOICE, ALIGNER_RATE = "en-us", 175
METHODS = ("mmalign", "librosa DTW", "linear")
# name: (voice, words per minute, SNR in dB or None, reverb RT60 in seconds or None)
CONDITIONS = {
    "clean": ("en-gb+f3", 140, None, None),
    "noise 20 dB": ("en-us+m3", 190, 20.0, None),
    "noise+reverb": ("en-gb", 160, 10.0, 0.5),
}

TEXT = """\
The lighthouse stood at the end of a narrow spit of land, where the river met the sea. \
For ninety years its keepers had climbed the same spiral stair each evening, trimmed the wick, \
and watched the beam sweep across the water. Ships that had never seen the coast before \
trusted that light more than their own charts.

The last keeper was a quiet woman called Ada, who kept bees in the walled garden and wrote \
the weather in a green ledger every morning. Wind from the north west, she would write, \
force six, rain before noon. When the light was finally automated, she stayed on for a year \
to show the engineers where the roof leaked and which window jammed in winter.

Nobody remembers who planted the apple trees behind the cottage. They still flower in May, \
long after the ledgers were taken to the museum in town. Visitors walk out along the spit on \
summer afternoons, read the small brass plaque by the door, and wonder how anyone could live \
so far from everything. Then the fog comes in, the horn starts to sound, and they understand.
"""


def degrade(y: np.ndarray, sr: int, *, snr_db: float | None, rt60: float | None, seed: int = 0) -> np.ndarray:
    """Add a synthetic room (exponentially decaying noise impulse response) and white noise."""
    import scipy.signal

    rng = np.random.default_rng(seed)
    y = y.astype(np.float64)
    if rt60:
        t = np.arange(int(rt60 * sr)) / sr
        response = 0.3 * rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)   # -60 dB at rt60
        response[0] = 1.0
        y = scipy.signal.fftconvolve(y, response)[: len(y)]
    if snr_db is not None:
        y = y + rng.standard_normal(len(y)) * np.sqrt(np.mean(y ** 2) / 10 ** (snr_db / 10))
    return (0.9 * y / np.abs(y).max()).astype(np.float32)


def boundaries(words) -> np.ndarray:
    """``(n_words, 2)`` start and end times in seconds of ``Word`` / ``Segment`` items."""
    return np.array([[w.start, w.end] for w in words], dtype=np.float64)


def mean_path_map(path: np.ndarray, n_x: int, rate: float):
    """Seconds on side x -> seconds on side y through a warping path (mean matched frame, interpolated)."""
    counts = np.bincount(path[:, 0], minlength=n_x)
    mean_y = np.bincount(path[:, 0], weights=path[:, 1], minlength=n_x) / np.maximum(counts, 1)
    return lambda t: np.interp(np.asarray(t) * rate, np.arange(n_x), mean_y) / rate


def librosa_baseline(synthetic, recording: np.ndarray, sr: int) -> np.ndarray:
    """Word boundaries from ``librosa.feature.mfcc`` (defaults) + ``librosa.sequence.dtw``."""
    import librosa

    hop = 512
    X = librosa.feature.mfcc(y=synthetic.audio, sr=sr)
    Y = librosa.feature.mfcc(y=recording, sr=sr)
    _, path = librosa.sequence.dtw(X=X, Y=Y)
    warp = mean_path_map(path[::-1], X.shape[1], sr / hop)
    return warp(boundaries(synthetic.words))


def summary(errors_ms: np.ndarray) -> tuple[float, float]:
    return float(np.median(errors_ms)), float(np.percentile(errors_ms, 95))


def run_condition(text: str, voice: str, rate: int, snr_db, rt60, *, seed: int) -> dict:
    clean, sr, truth_words = synthesize_speech(text, voice=voice, rate_wpm=rate)
    recording = degrade(clean, sr, snr_db=snr_db, rt60=rt60, seed=seed)
    truth = boundaries(truth_words)

    start = time.perf_counter()
    result = align_text(text, recording, sr, voice=ALIGNER_VOICE, rate_wpm=ALIGNER_RATE)
    seconds = time.perf_counter() - start
    synthetic = synthesize_speech(text, voice=ALIGNER_VOICE, rate_wpm=ALIGNER_RATE, sr=sr)
    if [w.char_start for w in synthetic.words] != [w.char_start for w in truth_words]:
        raise RuntimeError("the two renderings disagree on which words are spoken")
    duration_ratio = len(recording) / len(synthetic.audio)
    estimates = {
        "mmalign": result.word_times(),
        "librosa DTW": librosa_baseline(synthetic, recording, sr),
        "linear": boundaries(synthetic.words) * duration_ratio,
    }
    errors = {m: 1e3 * np.abs(estimates[m] - truth).ravel() for m in METHODS}
    return {"recording": recording, "sr": sr, "truth": truth, "result": result, "estimates": estimates,
            "errors": errors, "summary": {m: summary(errors[m]) for m in METHODS},
            "seconds": seconds, "duration": len(recording) / sr, "n_words": len(truth_words)}


def plot(runs: dict, path: str, *, excerpt: float = 8.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7.5), gridspec_kw={"height_ratios": [1.1, 1]})
    first = runs["clean"]
    y, sr = first["recording"], first["sr"]
    n = min(len(y), int(excerpt * sr))
    top.plot(np.arange(n) / sr, y[:n], color="0.6", lw=0.4)
    shown = first["truth"][:, 0] < excerpt
    for (t0, t1), (e0, e1), word in zip(first["truth"][shown], first["estimates"]["mmalign"][shown],
                                        [w.text for w, s in zip(first["result"].words, shown) if s]):
        top.axvline(t0, color="tab:green", lw=1.2)
        top.axvline(t1, color="tab:green", lw=0.6, ls=":")
        top.axvline(e0, color="tab:red", lw=1.0, ls="--")
        top.text(t0, 1.02, word, rotation=45, fontsize=8, transform=top.get_xaxis_transform(), ha="left")
    top.plot([], [], color="tab:green", label="true word start (synthesiser event)")
    top.plot([], [], color="tab:green", ls=":", label="true word end")
    top.plot([], [], color="tab:red", ls="--", label="mmalign word start")
    top.set_xlim(0, n / sr)
    top.set_xlabel("recording time (s)")
    top.set_yticks([])
    top.legend(loc="lower right", fontsize=8)
    top.set_title("clean condition: first seconds of the recording", pad=40)

    colours = {"mmalign": "tab:red", "librosa DTW": "tab:blue", "linear": "0.4"}
    styles = {"clean": "-", "noise 20 dB": "--", "noise+reverb": ":"}
    for name, run in runs.items():
        for method in METHODS:
            e = np.sort(np.maximum(run["errors"][method], 0.1))
            bottom.plot(e, np.arange(1, len(e) + 1) / len(e), color=colours[method], ls=styles.get(name, "-"),
                        label=f"{method}, {name}")
    bottom.set_xscale("log")
    bottom.set_xlabel("absolute word-boundary error (ms)")
    bottom.set_ylabel("fraction of boundaries")
    bottom.grid(True, which="both", alpha=0.3)
    bottom.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="folder for the figure, subtitles and recording (default: .)")
    parser.add_argument("--quick", action="store_true", help="first paragraph only")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    text = TEXT.split("\n\n")[0] if args.quick else TEXT

    print(f"eSpeak NG {espeak_version()}; aligner voice {ALIGNER_VOICE} at {ALIGNER_RATE} words/min")
    runs = {}
    for seed, (name, (voice, rate, snr, rt60)) in enumerate(CONDITIONS.items()):
        runs[name] = run_condition(text, voice, rate, snr, rt60, seed=seed)

    header = f"{'condition':<14}{'recording':>22}{'words':>7}{'align':>8}  " + "".join(
        f"{m + ' med/p95 ms':>24}" for m in METHODS)
    print(header)
    for name, run in runs.items():
        voice, rate, snr, rt60 = CONDITIONS[name]
        desc = f"{voice} {rate} wpm {run['duration']:.0f} s"
        cells = "".join(f"{'%.0f / %.0f' % run['summary'][m]:>24}" for m in METHODS)
        print(f"{name:<14}{desc:>22}{run['n_words']:>7}{run['seconds']:>7.1f}s  {cells}")

    import soundfile as sf

    clean = runs["clean"]
    files = {
        "figure": os.path.join(args.out, FIGURE),
        "srt": os.path.join(args.out, "forced_alignment.srt"),
        "vtt": os.path.join(args.out, "forced_alignment.vtt"),
        "csv": os.path.join(args.out, "forced_alignment_words.csv"),
        "wav": os.path.join(args.out, "forced_alignment_recording.wav"),
        "txt": os.path.join(args.out, "forced_alignment.txt"),
    }
    clean["result"].to_srt(files["srt"])
    clean["result"].to_vtt(files["vtt"])
    clean["result"].to_csv(files["csv"], level="word")
    sf.write(files["wav"], clean["recording"], clean["sr"])
    with open(files["txt"], "w", encoding="utf-8") as f:
        f.write(text)
    plot(runs, files["figure"])
    for kind, path in files.items():
        print(f"{kind:<7}{path}")
    print(f"try: mmalign subtitle {files['wav']} {files['txt']} --out {args.out} --voice {ALIGNER_VOICE}")
    return {"summary": {name: run["summary"] for name, run in runs.items()},
            "n_words": {name: run["n_words"] for name, run in runs.items()},
            "espeak": espeak_version(), **files}


if __name__ == "__main__":
    main()
