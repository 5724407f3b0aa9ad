"""``mmalign subtitle``: time a text against its recording and write subtitles.

Registered in :mod:`mmalign.cli` by :func:`add_parser`; the work is
:func:`mmalign.apps.forced_alignment.align_text`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..utils.files import atomic_write, check_output_file
from ._args import InputError, add_command, integer, non_negative_int

__all__ = ["add_parser", "run"]

FORMATS = ("srt", "vtt", "csv")

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

Outputs go to DIR, named after AUDIO: NAME.srt (SubRip), NAME.vtt (WebVTT)
and/or NAME.csv (columns start,end,text,char_start,char_end; times in
seconds).  Existing files are not replaced unless --force is given; each file
is written under a temporary name and renamed into place.  Needs the eSpeak NG
library: pip install "mmalign[speech]".
"""

EPILOG = """\
examples:
  mmalign subtitle talk.wav talk.txt --out subs/
  mmalign subtitle talk.flac talk.txt --out subs/ --format srt vtt csv --level word
  mmalign subtitle rede.wav rede.txt --out subs/ --voice de --rate 150

accuracy: on the recipe recipes/forced_alignment.py (a different voice and
rate than the recording's) the median word-boundary error is 3-5 ms on clean
and 20 dB SNR speech and about 30 ms with 10 dB SNR and 0.5 s reverb.

exit status: 0 on success; 2 on bad input (missing or unreadable file, audio
shorter than 0.5 s, text not UTF-8 or empty, unknown voice, eSpeak NG
missing), a bad output (exists without --force, is an input, folder not
writable; checked before any work) or a bad option, with a one-line message
on stderr.
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``subtitle`` sub-command to ``commands`` (the ``add_subparsers`` object of ``mmalign``)."""
    parser = add_command(
        commands, "subtitle",
        help="time a text against its recording (forced alignment) and write SRT / WebVTT / CSV",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("audio", metavar="AUDIO", help="the recording (WAV, FLAC, OGG, MP3, ...)")
    parser.add_argument("text", metavar="TEXT", help="UTF-8 text file with what is said in AUDIO")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="folder for the outputs (created if missing)")
    parser.add_argument("--voice", default="en",
                        help="eSpeak NG voice in the recording's language: en, en-us, en-gb, de, fr, es, ... "
                             "optionally with a variant such as en-us+f3 (default: en)")
    parser.add_argument("--rate", type=_rate_wpm, default=175, metavar="WPM",
                        help="speaking rate of the synthetic rendering in words per minute, 80-450; "
                             "close to the recording's helps a little (default: 175)")
    parser.add_argument("--format", nargs="+", choices=FORMATS, default=["srt"], dest="formats",
                        metavar="{srt,vtt,csv}", help="one or more output formats (default: srt)")
    parser.add_argument("--level", choices=("sentence", "word"), default="sentence",
                        help="one cue (or CSV row) per sentence or per word (default: sentence)")
    parser.add_argument("--line-length", type=non_negative_int, default=42, metavar="N",
                        help="wrap cue text at N characters, 0 for no wrapping (default: 42)")
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
    outputs = {fmt: check_output_file(os.path.join(args.out, f"{stem}.{fmt}"), force=args.force,
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

    line_length = args.line_length or None
    for fmt, path in outputs.items():
        with atomic_write(path) as tmp:
            if fmt == "srt":
                result.to_srt(tmp, level=args.level, line_length=line_length)
            elif fmt == "vtt":
                result.to_vtt(tmp, level=args.level, line_length=line_length)
            else:
                result.to_csv(tmp, level=args.level)

    print(f"recording     {args.audio}: {result.duration:.2f} s at {sr} Hz")
    print(f"text          {args.text}: {len(result.words)} words, {len(result.sentences)} sentences")
    if result.words:
        print(f"speech        {result.words[0].start:.2f} s to {result.words[-1].end:.2f} s")
    print(f"time          {seconds:.1f} s (voice {args.voice}, {args.rate} words/min)")
    for path in outputs.values():
        print(f"written       {path}")
    return 0


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
