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
import math
import os
import textwrap
from typing import Iterable, Mapping, NamedTuple

__all__ = ["Segment", "format_timestamp", "to_srt", "to_vtt", "to_csv", "to_textgrid", "to_audacity"]


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


def _praat_string(text: str) -> str:
    return '"' + " ".join(text.split()).replace('"', '""') + '"'


def to_textgrid(tiers: Mapping[str, Iterable[Segment]], path: str | os.PathLike | None = None, *,
                duration: float | None = None) -> str:
    """Segments as a Praat TextGrid (long text format), one interval tier per entry of ``tiers``.

    Praat's interval tiers cover the whole recording without gaps: the time between
    segments (and before the first, after the last) becomes empty intervals.

    Parameters
    ----------
    tiers : mapping tier name -> iterable of Segment (or ``(text, start, end, ...)`` tuples)
        E.g. ``{"sentences": ..., "words": ...}``; segments of a tier in time order,
        not overlapping. Times in seconds.
    path : str, os.PathLike or None
        Also write the TextGrid to this file (UTF-8).
    duration : float or None
        Length of the recording in seconds (the grid's ``xmax``); default the last end.

    Returns
    -------
    textgrid : str

    Raises
    ------
    ValueError
        No tier, an empty tier name, overlapping segments, or ``duration`` before the last end.

    Examples
    --------
    >>> grid = to_textgrid({"words": [("hello", 0.2, 0.5), ("world", 0.5, 0.9)]}, duration=1.0)
    >>> print(grid.splitlines()[13:17])
    ['        intervals: size = 4', '        intervals [1]:', '            xmin = 0', '            xmax = 0.2']
    """
    if not isinstance(tiers, Mapping) or not tiers:
        raise ValueError("tiers must be a non-empty mapping of tier name -> segments")
    checked = {}
    for name, segments in tiers.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"tiers: tier names must be non-empty strings, got {name!r}")
        checked[name] = _checked(segments)
        for a, b in zip(checked[name], checked[name][1:]):
            if b.start < a.end:
                raise ValueError(f"tiers[{name!r}]: segments overlap or are out of order "
                                 f"({a.text!r} ends at {a.end:g} s, {b.text!r} starts at {b.start:g} s)")
    end = max((segs[-1].end for segs in checked.values() if segs), default=0.0)
    if duration is None:
        duration = end
    elif not (isinstance(duration, (int, float)) and math.isfinite(duration)) or duration < end:
        raise ValueError(f"duration must be a number >= the last segment's end ({end:g} s), got {duration!r}")
    xmax = f"{float(duration):g}"
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax}",
             "tiers? <exists>", f"size = {len(checked)}", "item []:"]
    for t, (name, segs) in enumerate(checked.items(), 1):
        intervals, at = [], 0.0
        for seg in segs:
            if seg.start > at:
                intervals.append((at, seg.start, ""))
            intervals.append((seg.start, seg.end, seg.text))
            at = seg.end
        if at < duration or not intervals:
            intervals.append((at, float(duration), ""))
        lines += [f"    item [{t}]:", '        class = "IntervalTier"', f"        name = {_praat_string(name)}",
                  "        xmin = 0", f"        xmax = {xmax}", f"        intervals: size = {len(intervals)}"]
        for i, (a, b, text) in enumerate(intervals, 1):
            lines += [f"        intervals [{i}]:", f"            xmin = {a:g}", f"            xmax = {b:g}",
                      f"            text = {_praat_string(text)}"]
    return _write("\n".join(lines) + "\n", path)


def to_audacity(segments: Iterable[Segment], path: str | os.PathLike | None = None) -> str:
    """Segments as an Audacity label track: ``start<TAB>end<TAB>text`` per line (File > Import > Labels).

    Examples
    --------
    >>> to_audacity([("Hello, world", 0.5, 1.25)])
    '0.500000\\t1.250000\\tHello, world\\n'
    """
    rows = [f"{s.start:.6f}\t{s.end:.6f}\t{' '.join(s.text.split())}" for s in _checked(segments)]
    return _write("".join(row + "\n" for row in rows), path)
