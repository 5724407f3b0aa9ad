"""``mmalign subtitle``: time a text against its recording and write subtitles.

Registered in :mod:`mmalign.cli` by :func:`add_parser`; the work is
:func:`mmalign.apps.forced_alignment.align_text`.
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import sys
import time

from ..apps import subtitles
from ..apps.subtitles import is_low_confidence
from ..utils.files import atomic_write, check_output_file
from ._args import InputError, add_command, integer, non_negative_int

__all__ = ["add_parser", "run"]

FORMATS = ("srt", "vtt", "csv", "textgrid", "json", "tsv", "audacity")
# Audacity imports labels from any text file; ".labels.txt" keeps them off the transcript NAME.txt
EXTENSIONS = {"srt": ".srt", "vtt": ".vtt", "csv": ".csv", "textgrid": ".TextGrid", "json": ".json",
              "tsv": ".tsv", "audacity": ".labels.txt"}
FLAG = "(?) "

DESCRIPTION = """\
Find when each sentence (or word) of TEXT is spoken in the recording AUDIO and
write subtitles.  The text is rendered with the eSpeak NG speech synthesiser,
the synthetic speech is aligned to the recording with dynamic time warping on
MFCC frames, and the synthesiser's word boundaries are carried over onto the
recording's time axis (forced alignment in the spirit of aeneas).

AUDIO is any file libsndfile reads (WAV, FLAC, OGG, MP3, ...), mono or stereo,
at any sampling rate, at least 0.5 s long.  TEXT is a UTF-8 text file holding
what is said, in order; sentences end at . ! ? or a blank line.  The recording
should hold that text and little else.

Outputs go to DIR, named after AUDIO (--format, one or more):
  srt       NAME.srt         SubRip subtitles
  vtt       NAME.vtt         WebVTT subtitles
  csv       NAME.csv         columns start,end,text,char_start,char_end,confidence
  tsv       NAME.tsv         columns start, end, text, confidence (tab-separated,
                             header row, no quoting)
  audacity  NAME.labels.txt  Audacity label track (File > Import > Labels)
  textgrid  NAME.TextGrid    Praat TextGrid, tiers "sentences" and "words"
  json      NAME.json        text, duration, overall confidence, sentences with
                             their words, and all words (schema below)
--level picks one row or cue per sentence or per word in srt, vtt, csv, tsv
and audacity; textgrid and json always hold both levels.  Times are in
seconds.  Existing files are not replaced unless --force is given; each file
is written under a temporary name and renamed into place.  Needs the eSpeak NG
library: pip install "mmalign[speech]".

Confidence: every sentence and word gets a confidence in 0..1 (how well the
recording matched the text there; empty in csv/tsv and null in json when
unknown), and the run an overall one, printed in the summary.  When it is low,
a warning says the text and the recording may not match; the files are still
written and the exit status stays 0.  --min-confidence X marks (--low-confidence
flag) or leaves out (--low-confidence drop) the sentences or words under X:
flagged cues and labels start with "(?) " in srt, vtt and audacity, json sets
"low_confidence": true, csv and tsv show the confidence column; textgrid
labels stay unmarked.  Unknown confidences are never under X.
"""

EPILOG = """\
examples:
  mmalign subtitle talk.wav talk.txt --out subs/
  mmalign subtitle talk.flac talk.txt --out subs/ --format srt vtt csv --level word
  mmalign subtitle talk.wav talk.txt --out subs/ --format json textgrid audacity
  mmalign subtitle talk.wav talk.txt --out subs/ --min-confidence 0.4 --low-confidence drop
  mmalign subtitle rede.wav rede.txt --out subs/ --voice de --rate 150

json schema ("format": "mmalign-alignment", "version": 1; in full:
python -m pydoc mmalign.apps.subtitles.to_json):
  {"text", "audio_duration", "confidence", "min_confidence",
   "dropped": {"sentences", "words"},
   "sentences": [{"id", "text", "start", "end", "char_start", "char_end",
                  "confidence", "low_confidence", "words": [WORD, ...]}],
   "words": [WORD, ...]}   WORD: the same fields and "sentence" (its id)
  aeneas's fragments map as begin <- start, end <- end, lines <- [text].

accuracy: on six recordings of human readers (python -m benchmarks
forced_alignment_real) the median word-start error against an acoustic-model
aligner is 16 ms, 85 % of words within 50 ms, every first and last word
within 60 ms of it (aeneas: 65 ms, 38 %); on the recipe recipes/forced_alignment.py
(eSpeak in another voice and rate) 4-5 ms on clean and 20 dB SNR speech and
about 24 ms with 10 dB SNR and 0.5 s reverb.

exit status: 0 on success; 2 on bad input (missing or unreadable file, audio
shorter than 0.5 s, text not UTF-8 or empty, unknown voice, eSpeak NG
missing), a bad output (exists without --force, is an input, folder not
writable; checked before any work) or a bad option, with a one-line message
on stderr.  A low-confidence warning leaves the exit status at 0.
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``subtitle`` sub-command to ``commands`` (the ``add_subparsers`` object of ``mmalign``)."""
    parser = add_command(
        commands, "subtitle",
        help="time a text against its recording (forced alignment) and write subtitles "
             "(SRT, WebVTT, CSV, TSV, JSON, Praat TextGrid, Audacity labels)",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("audio", metavar="AUDIO", help="the recording (WAV, FLAC, OGG, MP3, ...)")
    parser.add_argument("text", metavar="TEXT", help="UTF-8 text file with what is said in AUDIO")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="folder for the outputs (created if missing)")
    parser.add_argument("--voice", default="en-us",
                        help="eSpeak NG voice in the recording's language and accent: en-us, en-gb, de, fr, "
                             "es, ... optionally with a variant such as en-us+m3 (default: en-us; on American "
                             "recordings it placed words closer than en-gb)")
    parser.add_argument("--rate", type=_rate_wpm, default=175, metavar="WPM",
                        help="speaking rate of the synthetic rendering in words per minute, 80-450; "
                             "close to the recording's helps a little (default: 175)")
    parser.add_argument("--format", nargs="+", type=str.lower, choices=FORMATS, default=["srt"], dest="formats",
                        metavar="FORMAT",
                        help=f"one or more output formats: {', '.join(FORMATS)} (default: srt)")
    parser.add_argument("--level", choices=("sentence", "word"), default="sentence",
                        help="one cue or row per sentence or per word in srt, vtt, csv, tsv and audacity; "
                             "textgrid and json hold both (default: sentence)")
    parser.add_argument("--line-length", type=non_negative_int, default=42, metavar="N",
                        help="wrap cue text at N characters, 0 for no wrapping (default: 42)")
    parser.add_argument("--min-confidence", type=_fraction, default=0.0, metavar="X",
                        help="sentences or words with a confidence under X (0-1) are flagged or dropped, "
                             "see --low-confidence (default: 0, off)")
    parser.add_argument("--low-confidence", choices=("flag", "drop"), default="flag",
                        help="what --min-confidence does to the segments under X: flag keeps them marked "
                             "('(?) ' before the cue text, \"low_confidence\": true in json), drop leaves "
                             "them out (default: flag)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: when stderr is a terminal)")
    parser.add_argument("--force", action="store_true",
                        help="replace output files that already exist in DIR (default: refuse)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``mmalign subtitle`` with parsed ``args``; input errors raise :class:`~mmalign.cli._args.InputError`.

    The outputs are checked first, then the audio (readable, at least 0.5 s),
    then the work starts; each output is written through a temporary file.
    """
    from ..apps import forced_alignment
    from ..features import audio as audio_io

    text = _read_text(args.text, InputError)
    if not os.path.exists(args.audio):
        raise InputError(f"audio file not found: {args.audio}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InputError(f"--out must be a folder, but {args.out} is a file")
    stem = os.path.splitext(os.path.basename(args.audio))[0]
    outputs = {fmt: check_output_file(os.path.join(args.out, stem + EXTENSIONS[fmt]), force=args.force,
                                      inputs=(args.audio, args.text), option="--out")
               for fmt in dict.fromkeys(args.formats)}          # keep order, drop repeats
    audio_io.check_audio_file(args.audio)

    start = time.perf_counter()
    audio, sr = audio_io.load_audio(args.audio, sr=None, mono=True)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        result = forced_alignment.align_text(text, audio, sr, voice=args.voice, rate_wpm=args.rate,
                                             progress=progress)
    except ImportError as err:
        raise InputError(str(err)) from None
    seconds = time.perf_counter() - start

    threshold = args.min_confidence or None
    for fmt, path in outputs.items():
        with atomic_write(path) as tmp:
            _write(fmt, result, tmp, level=args.level, line_length=args.line_length or None,
                   min_confidence=threshold, action=args.low_confidence)

    confidence = float(getattr(result, "confidence", math.nan))
    low = float(getattr(forced_alignment, "LOW_CONFIDENCE", 0.5))
    print(f"recording     {args.audio}: {result.duration:.2f} s at {sr} Hz")
    print(f"text          {args.text}: {len(result.words)} words, {len(result.sentences)} sentences")
    if result.words:
        print(f"speech        {result.words[0].start:.2f} s to {result.words[-1].end:.2f} s")
    if math.isnan(confidence):
        print("confidence    unknown")
    else:
        print(f"confidence    {confidence:.2f} overall (0-1; under {low:.2f}: text and recording may not match)")
    if threshold is not None:
        counts = [f"{sum(is_low_confidence(s.confidence, threshold) for s in segments)} of {len(segments)} {name}"
                  for name, segments in (("sentences", result.sentences), ("words", result.words))]
        done = "dropped" if args.low_confidence == "drop" else f'flagged "{FLAG.strip()}"'
        print(f"low           {' and '.join(counts)} under {threshold:g}: {done}")
    print(f"time          {seconds:.1f} s (voice {args.voice}, {args.rate} words/min)")
    for path in outputs.values():
        print(f"written       {path}")
    if confidence < low:
        print(f"mmalign: warning: the overall confidence {confidence:.2f} is under {low:.2f}: the text and the "
              f"recording may not match, and the times written are likely wrong. Check that {args.text} is "
              f"the transcript of {args.audio} (the right file, complete, in the spoken order), that --voice "
              f"{args.voice} is the recording's language, and that the recording holds little besides the "
              "text (long music, silence or other talk).", file=sys.stderr)
    return 0


def _write(fmt: str, result, path: str, *, level: str, line_length: int | None,
           min_confidence: float | None, action: str) -> None:
    """Write ``result`` as ``fmt`` to ``path``, flagging or dropping the segments under ``min_confidence``."""
    if fmt == "json":
        result.to_json(path, min_confidence=min_confidence, low_confidence=action)
    elif fmt == "textgrid":
        tiers = {"sentences": _kept(result.sentences, min_confidence, action)[0],
                 "words": _kept(result.words, min_confidence, action)[0]}
        subtitles.to_textgrid(tiers, path, duration=result.duration)
    elif fmt in ("srt", "vtt"):
        cues = _cues(result, level, line_length, min_confidence, action)
        writer = subtitles.to_srt if fmt == "srt" else subtitles.to_vtt
        writer(cues, path, line_length=line_length)
    else:
        segments, low = _kept(result.segments(level), min_confidence, action)
        if fmt == "audacity":
            subtitles.to_audacity(_flagged(segments, low), path)
        else:
            (subtitles.to_csv if fmt == "csv" else subtitles.to_tsv)(segments, path)


def _kept(segments: list, min_confidence: float | None, action: str) -> tuple[list, list[bool]]:
    """The segments to write and, for each, whether it is under ``min_confidence`` (to be flagged)."""
    low = [is_low_confidence(s.confidence, min_confidence) for s in segments]
    if action == "drop":
        return [s for s, bad in zip(segments, low) if not bad], [False] * (len(low) - sum(low))
    return list(segments), low


def _flagged(segments: list, low: list[bool]) -> list:
    return [s._replace(text=FLAG + s.text) if bad else s for s, bad in zip(segments, low)]


def _cues(result, level: str, line_length: int | None, min_confidence: float | None, action: str) -> list:
    """Subtitle cues (long sentences cut to fit two lines), judged by the confidence of their sentence or word.

    A flagged sentence is cut for lines ``len(FLAG)`` shorter, so that its cues still fit with the flag.
    """
    cues = result.segments(level, line_length=line_length, max_lines=2)
    if min_confidence is None:
        return cues
    judged = _judged(cues, result.sentences if level == "sentence" else [])
    low = [is_low_confidence(judge.confidence, min_confidence) for _, judge in judged]
    if action == "drop":
        return [cue for (cue, _), bad in zip(judged, low) if not bad]
    if level == "sentence" and line_length is not None and any(low):
        narrow = _judged(result.segments(level, line_length=max(line_length - len(FLAG), 1), max_lines=2),
                         result.sentences)
        narrow_low = [is_low_confidence(judge.confidence, min_confidence) for _, judge in narrow]
        pairs = [(cue, False) for (cue, _), bad in zip(judged, low) if not bad]
        pairs += [(cue, True) for (cue, _), bad in zip(narrow, narrow_low) if bad]
        pairs.sort(key=lambda pair: (pair[0].start, pair[0].char_start))
        return _flagged([cue for cue, _ in pairs], [bad for _, bad in pairs])
    return _flagged(cues, low)


def _judged(cues: list, sentences: list) -> list[tuple]:
    """``(cue, judge)`` pairs: a piece of a sentence is as (un)certain as its sentence; a word is itself."""
    starts = [s.char_start for s in sentences]
    out = []
    for cue in cues:
        k = bisect.bisect_right(starts, cue.char_start) - 1
        inside = cue.char_start >= 0 and k >= 0 and cue.char_start < sentences[k].char_end
        out.append((cue, sentences[k] if inside else cue))
    return out


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:                 # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text}")
    return value


def _rate_wpm(text: str) -> int:
    value = integer(text)
    if not 80 <= value <= 450:
        raise argparse.ArgumentTypeError(f"must be between 80 and 450 words per minute, got {text}")
    return value


def _read_text(path: str, error: type) -> str:
    if not os.path.exists(path):
        raise error(f"text file not found: {path}")
    if os.path.isdir(path):
        raise error(f"expected a text file, got a directory: {path}")
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise error(f"could not read {path} as UTF-8 text ({err.reason} at byte {err.start}); "
                    "save it as UTF-8") from None
    if not text.strip():
        raise error(f"text file {path} is empty: nothing to align")
    return text
