"""Timed text segments and their file formats: SRT, WebVTT and CSV.

A :class:`Segment` is a piece of text with a start and an end time in
seconds (a word or a sentence of :func:`mmalign.apps.forced_alignment.align_text`).
The writers return the file's text and, given a path, also write it (UTF-8,
``"\\n"`` line ends).

- **SRT** (SubRip): numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``.
- **WebVTT**: a ``WEBVTT`` header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``
  with ``&``, ``<`` and ``>`` escaped in the cue text.
- **CSV**: one row per segment, columns ``start,end,text,char_start,char_end``
  (seconds with millisecond precision; character offsets into the aligned
  text, end exclusive).

Cue text is the segment's text with runs of white space collapsed, wrapped to
lines of at most ``line_length`` characters (42 is the usual subtitle limit;
``None`` keeps one line).
"""

from __future__ import annotations

import csv
import io
import os
import textwrap
from typing import Iterable, NamedTuple

__all__ = ["Segment", "format_timestamp", "to_srt", "to_vtt", "to_csv"]


class Segment(NamedTuple):
    """A timed piece of text: ``text``, ``start`` and ``end`` in seconds, character span in the source."""

    text: str
    start: float
    end: float
    char_start: int = -1
    char_end: int = -1


def format_timestamp(seconds: float, *, separator: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT, ``separator=","``) or ``HH:MM:SS.mmm`` (WebVTT, ``"."``).

    Parameters
    ----------
    seconds : float >= 0
        Time in seconds, rounded to the nearest millisecond.
    separator : str
        Between seconds and milliseconds.

    Returns
    -------
    stamp : str

    Examples
    --------
    >>> format_timestamp(3723.4567)
    '01:02:03,457'
    >>> format_timestamp(59.9996, separator=".")
    '00:01:00.000'
    """
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"seconds must be a finite non-negative number, got {seconds!r}")
    ms = int(round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _cue_text(text: str, line_length: int | None) -> str:
    flat = " ".join(text.split())
    if line_length is None or len(flat) <= line_length:
        return flat
    return "\n".join(textwrap.wrap(flat, width=line_length, break_long_words=False, break_on_hyphens=False))


def _checked(segments: Iterable) -> list[Segment]:
    out = []
    for n, s in enumerate(segments):
        s = Segment(*s)
        if not (0 <= s.start <= s.end < float("inf")):
            raise ValueError(f"segment {n} ({s.text!r}) has bad times start={s.start!r}, end={s.end!r}; "
                             "need 0 <= start <= end")
        out.append(s)
    return out


def _write(content: str, path: str | os.PathLike | None) -> str:
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(content)
    return content


def to_srt(segments: Iterable[Segment], path: str | os.PathLike | None = None, *,
           line_length: int | None = 42) -> str:
    """SubRip subtitles, one numbered cue per segment.

    Parameters
    ----------
    segments : iterable of Segment (or ``(text, start, end, ...)`` tuples)
        In display order; times in seconds.
    path : str, os.PathLike or None
        Also write the subtitles to this file.
    line_length : int or None
        Wrap cue text at this many characters.

    Returns
    -------
    srt : str

    Examples
    --------
    >>> print(to_srt([("Hello world.", 0.5, 1.25), ("Bye.", 61.0, 62.0)]), end="")
    1
    00:00:00,500 --> 00:00:01,250
    Hello world.
    <BLANKLINE>
    2
    00:01:01,000 --> 00:01:02,000
    Bye.
    """
    blocks = []
    for n, s in enumerate(_checked(segments), start=1):
        text = _cue_text(s.text, line_length).replace("-->", "->")
        blocks.append(f"{n}\n{format_timestamp(s.start)} --> {format_timestamp(s.end)}\n{text}\n")
    return _write("\n".join(blocks), path)


def to_vtt(segments: Iterable[Segment], path: str | os.PathLike | None = None, *,
           line_length: int | None = 42, numbered: bool = False) -> str:
    """WebVTT subtitles, one cue per segment.

    Parameters
    ----------
    segments : iterable of Segment (or ``(text, start, end, ...)`` tuples)
        In display order; times in seconds.
    path : str, os.PathLike or None
        Also write the subtitles to this file.
    line_length : int or None
        Wrap cue text at this many characters.
    numbered : bool
        Give each cue an identifier line ``1``, ``2``, ...

    Returns
    -------
    vtt : str

    Examples
    --------
    >>> print(to_vtt([("Fish & chips <3", 0.5, 1.25)]), end="")
    WEBVTT
    <BLANKLINE>
    00:00:00.500 --> 00:00:01.250
    Fish &amp; chips &lt;3
    """
    blocks = ["WEBVTT\n"]
    for n, s in enumerate(_checked(segments), start=1):
        text = _cue_text(s.text, line_length).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        head = f"{n}\n" if numbered else ""
        blocks.append(f"{head}{format_timestamp(s.start, separator='.')} --> "
                      f"{format_timestamp(s.end, separator='.')}\n{text}\n")
    return _write("\n".join(blocks), path)


def to_csv(segments: Iterable[Segment], path: str | os.PathLike | None = None) -> str:
    """Segments as CSV: ``start,end,text,char_start,char_end`` with a header row.

    Parameters
    ----------
    segments : iterable of Segment (or ``(text, start, end, char_start, char_end)`` tuples)
        Times in seconds.
    path : str, os.PathLike or None
        Also write the table to this file.

    Returns
    -------
    table : str

    Examples
    --------
    >>> print(to_csv([("Hello, world", 0.5, 1.25, 0, 12)]), end="")
    start,end,text,char_start,char_end
    0.500,1.250,"Hello, world",0,12
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["start", "end", "text", "char_start", "char_end"])
    for s in _checked(segments):
        writer.writerow([f"{s.start:.3f}", f"{s.end:.3f}", " ".join(s.text.split()), s.char_start, s.char_end])
    return _write(buf.getvalue(), path)
