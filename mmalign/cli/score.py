"""``mmalign score SCORE AUDIO --out DIR``: where each note of a score sounds in a recording.

Registered by :mod:`mmalign.cli`; the work is done by :func:`mmalign.apps.sync.align_score`.
"""

from __future__ import annotations

import argparse
import os

from ._args import add_command, positive_float, positive_int

__all__ = ["add_parser", "run"]

OUTPUT_NAMES = {"notes": "notes.csv", "midi": "aligned.mid", "plot": "alignment.png"}

DESCRIPTION = """\
Align a symbolic score (MIDI, or MusicXML with music21 installed) with a
recording of it, and say when each note starts and ends in the recording.

The score's harmony (chroma, with the partials an instrument adds) and its
note onsets per pitch class are computed from its notes; the recording's from
its constant-Q chroma and semitone-band energy (the features of 'mmalign sync',
chroma+dlnco). Dynamic time warping finds the monotone path between the two,
and every note's onset and offset are read off it.

Outputs, in DIR (created if missing):
  notes.csv      one row per note: pitch, score_onset, score_offset (seconds
                 of the score at its own tempo), audio_onset, audio_offset
                 (seconds in AUDIO), velocity, instrument (track name)
  aligned.mid    the score re-timed onto the recording
  alignment.png  the path: score seconds across, audio seconds up
Existing files are not replaced unless --force is given; each file is
written under a temporary name and renamed into place when complete.
"""

EPILOG = """\
examples:
  mmalign score chorale.mid take.wav --out aligned/
  mmalign score chorale.musicxml take.flac --out aligned/ --sr 22050 --force

exit status: 0 on success; 2 on bad input (missing, unreadable or empty score,
unreadable audio or audio shorter than 0.5 s) or a bad output (an existing
file without --force, an output that is an input, a folder that cannot be
written; checked before any work), with a one-line message on stderr.
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``score`` sub-command to ``commands``."""
    parser = add_command(commands, "score",
                         help="align a MIDI / MusicXML score with a recording; write per-note times, "
                              "a re-timed MIDI and a plot",
                         description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("score", metavar="SCORE", help="the score: .mid / .midi, or .xml / .musicxml / .mxl")
    parser.add_argument("audio", metavar="AUDIO", help="the recording (WAV, FLAC, OGG, ...; mixed down to mono)")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="folder for notes.csv, aligned.mid and alignment.png (created if missing)")
    parser.add_argument("--sr", type=positive_int, default=22050, metavar="HZ",
                        help="analysis rate; the recording is resampled to it (default: 22050)")
    parser.add_argument("--onset-weight", type=float, default=1.0, metavar="W",
                        help="weight of the note-onset features against the harmony (default: 1)")
    parser.add_argument("--feature-rate", type=positive_float, default=50.0, metavar="HZ",
                        help="frames per second (default: 50)")
    parser.add_argument("--no-plot", action="store_true", help="do not write alignment.png")
    parser.add_argument("--force", action="store_true", help="replace outputs that already exist in DIR")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``mmalign score`` with parsed ``args``: outputs checked, then inputs, then the work."""
    from ..apps.sync.core import MIN_SECONDS
    from ..apps.sync.score import SCORE_SUFFIXES, align_score, load_score, write_score_outputs
    from ..features.audio import check_audio_file, load_audio
    from ..utils.files import check_output_file

    for path, what in ((args.score, "score"), (args.audio, "audio")):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{what} file not found: {path}")
        if os.path.isdir(path):
            raise ValueError(f"expected a {what} file, got a folder: {path}")
    if os.path.splitext(args.score)[1].lower() not in SCORE_SUFFIXES:
        raise ValueError(f"SCORE must be a MIDI or MusicXML file ({', '.join(SCORE_SUFFIXES)}), got {args.score}")
    if not 0 <= args.onset_weight < float("inf"):
        raise ValueError(f"--onset-weight must be a number >= 0, got {args.onset_weight}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out must be a folder, but {args.out} is a file")
    wanted = {k: v for k, v in OUTPUT_NAMES.items() if not (k == "plot" and args.no_plot)}
    outputs = {k: check_output_file(os.path.join(args.out, name), force=args.force,
                                    inputs=(args.score, args.audio), option="--out")
               for k, name in wanted.items()}
    notes = load_score(args.score)
    check_audio_file(args.audio, min_seconds=MIN_SECONDS)
    audio, sr = load_audio(args.audio, sr=args.sr)
    result = align_score(args.score, audio, sr, onset_weight=args.onset_weight, feature_rate=args.feature_rate)
    os.makedirs(args.out, exist_ok=True)
    write_score_outputs(result, outputs, title=f"{os.path.basename(args.score)} vs {os.path.basename(args.audio)}")
    t = result.alignment.times()
    print(f"score      {args.score}: {len(notes)} notes, {notes['score_offset'].max():.2f} s at its tempo")
    print(f"audio      {args.audio}: {len(audio) / sr:.2f} s at {sr} Hz")
    print(f"path       {len(t)} steps; first note at {result.notes['audio_onset'].min():.3f} s, "
          f"last note-off at {result.notes['audio_offset'].max():.3f} s")
    print("time       " + ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items()))
    for path in outputs.values():
        print(f"wrote      {path}")
    return 0
