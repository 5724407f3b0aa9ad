"""Timed text segments and their file formats: SRT, WebVTT, CSV, TSV, JSON, Praat TextGrid, Audacity labels.

A :class:`Segment` is a piece of text with a start and an end time in
seconds (a word or a sentence of :func:`mmalign.apps.forced_alignment.align_text`)
and a ``confidence`` in [0, 1] (NaN when unknown).  The writers return the
file's text and, given a path, also write it (UTF-8, ``"\\n"`` line ends).

- **SRT** (SubRip): numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``.
- **WebVTT**: a ``WEBVTT`` header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``
  with ``&``, ``<`` and ``>`` escaped in the cue text.
- **CSV**: one row per segment, columns
  ``start,end,text,char_start,char_end,confidence`` (seconds with millisecond
  precision; character offsets into the aligned text, end exclusive;
  confidence with 3 decimals, empty when unknown).
- **TSV**: tab-separated, columns ``start<TAB>end<TAB>text<TAB>confidence``
  under a header row (aeneas's TSV is ``begin<TAB>end<TAB>id``), no quoting:
  tabs and line breaks in the text become spaces.
- **JSON** (:func:`to_json`): both levels at once, words nested in their
  sentences and as one flat list::

      {"format": "mmalign-alignment", "version": 1,
       "text": str | null,              # the aligned text
       "audio_duration": float | null,  # seconds
       "confidence": float | null,      # overall, 0..1
       "min_confidence": float | null,  # threshold of the low_confidence flags
       "dropped": {"sentences": int, "words": int},   # removed under min_confidence
       "sentences": [SEGMENT + {"words": [WORD, ...]}, ...],
       "words": [WORD, ...]}
      SEGMENT = {"id": int, "text": str, "start": float, "end": float,
                 "char_start": int | null, "char_end": int | null,
                 "confidence": float | null, "low_confidence": bool}
      WORD = SEGMENT + {"sentence": int | null}   # id of its sentence

  Times in seconds rounded to milliseconds, confidences to 3 decimals,
  unknown values ``null``.
- **Praat TextGrid** (:func:`to_textgrid`): one interval tier per level.
- **Audacity labels** (:func:`to_audacity`): ``start<TAB>end<TAB>text`` lines.

Cue text is the segment's text with runs of white space collapsed, wrapped to
lines of at most ``line_length`` characters (42 is the usual subtitle limit;
``None`` keeps one line).
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import os
import textwrap
from typing import Iterable, Mapping, NamedTuple

__all__ = ["Segment", "format_timestamp", "is_low_confidence", "to_srt", "to_vtt", "to_csv", "to_tsv",
           "to_json", "to_textgrid", "to_audacity"]

JSON_FORMAT = "mmalign-alignment"
JSON_VERSION = 1
LOW_CONFIDENCE_ACTIONS = ("flag", "drop")


class Segment(NamedTuple):
    """A timed piece of text: ``text``, ``start`` and ``end`` in seconds, character span in the source.

    ``confidence`` is in [0, 1] (how well the recording matched the text there,
    :func:`mmalign.apps.forced_alignment.align_text`), NaN when unknown.
    """

    text: str
    start: float
    end: float
    char_start: int = -1
    char_end: int = -1
    confidence: float = math.nan


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
        confidence = math.nan if s.confidence is None else s.confidence
        if not (isinstance(confidence, (int, float)) and (math.isnan(confidence) or 0 <= confidence <= 1)):
            raise ValueError(f"segment {n} ({s.text!r}) has confidence={s.confidence!r}; "
                             "need a number in [0, 1] or NaN (unknown)")
        out.append(s._replace(confidence=float(confidence)))
    return out


def _check_threshold(min_confidence: float | None) -> float | None:
    if min_confidence is None:
        return None
    if (isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float))
            or not 0 <= min_confidence <= 1):
        raise ValueError(f"min_confidence must be a number in [0, 1] or None, got {min_confidence!r}")
    return float(min_confidence)


def is_low_confidence(confidence: float, min_confidence: float | None) -> bool:
    """Whether a segment with this ``confidence`` falls under the threshold ``min_confidence``.

    An unknown confidence (NaN or None) is never low; ``min_confidence=None``
    (or 0) flags nothing.

    Examples
    --------
    >>> is_low_confidence(0.3, 0.5), is_low_confidence(0.5, 0.5), is_low_confidence(float("nan"), 0.5)
    (True, False, False)
    """
    min_confidence = _check_threshold(min_confidence)
    return (min_confidence is not None and confidence is not None and not math.isnan(confidence)
            and confidence < min_confidence)


def _confidence_cell(confidence: float) -> str:
    return "" if math.isnan(confidence) else f"{confidence:.3f}"


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
    """Segments as CSV: ``start,end,text,char_start,char_end,confidence`` with a header row.

    Parameters
    ----------
    segments : iterable of Segment (or ``(text, start, end, char_start, char_end, confidence)`` tuples)
        Times in seconds; character offsets -1 when unknown; confidence in
        [0, 1], NaN when unknown.
    path : str, os.PathLike or None
        Also write the table to this file.

    Returns
    -------
    table : str
        Times with millisecond precision, text with white space collapsed
        (quoted as CSV needs), confidence with 3 decimals or empty when unknown.

    Examples
    --------
    >>> print(to_csv([("Hello, world", 0.5, 1.25, 0, 12, 0.875), ("Bye", 2.0, 2.5)]), end="")
    start,end,text,char_start,char_end,confidence
    0.500,1.250,"Hello, world",0,12,0.875
    2.000,2.500,Bye,-1,-1,
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["start", "end", "text", "char_start", "char_end", "confidence"])
    for s in _checked(segments):
        writer.writerow([f"{s.start:.3f}", f"{s.end:.3f}", " ".join(s.text.split()), s.char_start, s.char_end,
                         _confidence_cell(s.confidence)])
    return _write(buf.getvalue(), path)


def to_tsv(segments: Iterable[Segment], path: str | os.PathLike | None = None) -> str:
    """Segments as tab-separated values: ``start<TAB>end<TAB>text<TAB>confidence`` with a header row.

    Plain TSV without quoting (as aeneas's ``begin<TAB>end<TAB>id``): tabs
    and line breaks inside the text become single spaces, so every row has
    exactly four fields.  Read it with ``csv.reader(f, delimiter="\\t",
    quoting=csv.QUOTE_NONE)`` or ``pandas.read_csv(path, sep="\\t",
    quoting=3)`` (no quote handling, so a word such as ``"world"`` keeps its
    quotes), or with ``cut``/``awk``.

    Parameters
    ----------
    segments : iterable of Segment (or ``(text, start, end, ...)`` tuples)
        Times in seconds; confidence in [0, 1], NaN when unknown.
    path : str, os.PathLike or None
        Also write the table to this file.

    Returns
    -------
    table : str
        Times with millisecond precision, confidence with 3 decimals or
        empty when unknown.

    Examples
    --------
    >>> to_tsv([("Hello,\\tworld", 0.5, 1.25, 0, 12, 0.875), ("Bye", 2.0, 2.5)])
    'start\\tend\\ttext\\tconfidence\\n0.500\\t1.250\\tHello, world\\t0.875\\n2.000\\t2.500\\tBye\\t\\n'
    """
    rows = ["start\tend\ttext\tconfidence"]
    rows += [f"{s.start:.3f}\t{s.end:.3f}\t{' '.join(s.text.split())}\t{_confidence_cell(s.confidence)}"
             for s in _checked(segments)]
    return _write("".join(row + "\n" for row in rows), path)


def _json_number(value: float, digits: int) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), digits)


def _json_segment(n: int, s: Segment, min_confidence: float | None) -> dict:
    return {"id": n, "text": " ".join(s.text.split()), "start": round(s.start, 3), "end": round(s.end, 3),
            "char_start": s.char_start if s.char_start >= 0 else None,
            "char_end": s.char_end if s.char_end >= 0 else None,
            "confidence": _json_number(s.confidence, 3),
            "low_confidence": is_low_confidence(s.confidence, min_confidence)}


def _sentence_of(words: list[Segment], sentences: list[Segment]) -> list[int | None]:
    """Index of the sentence holding each word: by character span where both have one, else by time."""
    by_char = [(s.char_start, s.char_end, k) for k, s in enumerate(sentences) if 0 <= s.char_start]
    by_char.sort()
    by_time = sorted((s.start, s.end, k) for k, s in enumerate(sentences))
    char_starts, time_starts = [c[0] for c in by_char], [t[0] for t in by_time]
    out = []
    for w in words:
        k = None
        if w.char_start >= 0 and by_char:
            i = bisect.bisect_right(char_starts, w.char_start) - 1
            if i >= 0 and w.char_start < by_char[i][1]:
                k = by_char[i][2]
        elif w.char_start < 0 and by_time:
            middle = (w.start + w.end) / 2
            i = bisect.bisect_right(time_starts, middle) - 1
            if i >= 0 and middle <= by_time[i][1]:
                k = by_time[i][2]
        out.append(k)
    return out


def to_json(sentences: Iterable[Segment], words: Iterable[Segment] = (), path: str | os.PathLike | None = None,
            *, text: str | None = None, duration: float | None = None, confidence: float | None = None,
            min_confidence: float | None = None, low_confidence: str = "flag", indent: int | None = 2) -> str:
    """Sentences and words as one JSON document (schema ``"mmalign-alignment"``, version 1).

    Layout (unknown values are ``null``; JSON has no NaN)::

        {"format": "mmalign-alignment", "version": 1,
         "text": str | null,              # the aligned text (``text``)
         "audio_duration": float | null,  # seconds (``duration``)
         "confidence": float | null,      # overall, 0..1 (``confidence``)
         "min_confidence": float | null,  # threshold of the low_confidence flags
         "dropped": {"sentences": int, "words": int},  # removed under min_confidence
         "sentences": [SEGMENT + {"words": [WORD, ...]}, ...],
         "words": [WORD, ...]}
        SEGMENT = {"id": int,                        # position in the input list
                   "text": str,                      # white space collapsed
                   "start": float, "end": float,     # seconds, 3 decimals
                   "char_start": int | null,         # offsets into "text", end exclusive
                   "char_end": int | null,
                   "confidence": float | null,       # 0..1, 3 decimals
                   "low_confidence": bool}           # confidence < min_confidence
        WORD = SEGMENT + {"sentence": int | null}    # "id" of the sentence holding it

    Words appear twice: nested in the sentence that holds them (by character
    span, or by time when spans are unknown) and in the flat ``"words"``
    list, in input order.  Ids are positions in the full input, so they stay
    the same when segments are dropped.  For tools that expect aeneas's
    ``{"fragments": [{"id", "begin", "end", "lines"}]}``, map
    ``sentences[i].id/start/end/text`` to ``fragments[i].id/begin/end/lines``
    (see the example).

    Parameters
    ----------
    sentences, words : iterable of Segment (or ``(text, start, end, ...)`` tuples)
        The two levels, each in time order; times in seconds.
    path : str, os.PathLike or None
        Also write the document to this file (UTF-8, not ASCII-escaped).
    text : str or None
        The aligned text, which the character offsets index.
    duration : float >= the last end, or None
        Length of the recording in seconds.
    confidence : float in [0, 1], NaN or None
        Overall confidence of the alignment (unknown: NaN or None).
    min_confidence : float in [0, 1] or None
        Segments whose known confidence is below it are low-confidence
        (:func:`is_low_confidence`); ``None`` flags nothing.
    low_confidence : {"flag", "drop"}
        ``"flag"`` keeps low-confidence segments with ``"low_confidence":
        true``; ``"drop"`` leaves them out (a dropped sentence's words stay
        in the flat ``"words"`` list unless they are low themselves) and
        counts them in ``"dropped"``.
    indent : int or None
        JSON indentation; ``None`` for one line.

    Returns
    -------
    document : str

    Raises
    ------
    ValueError
        Bad times or confidences, ``duration`` before the last end, a bad
        ``min_confidence`` or ``low_confidence``.

    Examples
    --------
    >>> import json
    >>> doc = json.loads(to_json([("Hi there.", 0.5, 1.25, 0, 9, 0.9)],
    ...                          [("Hi", 0.5, 0.75, 0, 2, 0.95), ("there", 0.8, 1.25, 3, 8, 0.41)],
    ...                          text="Hi there.", duration=2.0, confidence=0.9, min_confidence=0.5))
    >>> [(w["text"], w["start"], w["sentence"], w["low_confidence"]) for w in doc["sentences"][0]["words"]]
    [('Hi', 0.5, 0, False), ('there', 0.8, 0, True)]
    >>> fragments = [{"id": f"f{s['id'] + 1:06d}", "begin": f"{s['start']:.3f}", "end": f"{s['end']:.3f}",
    ...               "lines": [s["text"]]} for s in doc["sentences"]]      # aeneas's layout
    >>> fragments
    [{'id': 'f000001', 'begin': '0.500', 'end': '1.250', 'lines': ['Hi there.']}]
    """
    sentences, words = _checked(sentences), _checked(words)
    min_confidence = _check_threshold(min_confidence)
    if low_confidence not in LOW_CONFIDENCE_ACTIONS:
        raise ValueError(f"low_confidence must be one of {LOW_CONFIDENCE_ACTIONS}, got {low_confidence!r}")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"text must be a str or None, got {type(text).__name__}")
    end = max((s.end for s in sentences + words), default=0.0)
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                 or not math.isfinite(duration) or duration < end):
        raise ValueError(f"duration must be a number >= the last segment's end ({end:g} s) or None, "
                         f"got {duration!r}")
    if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, (int, float))
                                   or not (math.isnan(confidence) or 0 <= confidence <= 1)):
        raise ValueError(f"confidence must be a number in [0, 1], NaN or None, got {confidence!r}")
    drop = low_confidence == "drop"
    parents = _sentence_of(words, sentences)
    word_items = []
    for n, (w, k) in enumerate(zip(words, parents)):
        item = _json_segment(n, w, min_confidence)
        item["sentence"] = k
        word_items.append(item)
    sentence_items = []
    for n, s in enumerate(sentences):
        item = _json_segment(n, s, min_confidence)
        item["words"] = []
        sentence_items.append(item)
    for item, k in zip(word_items, parents):
        if k is not None and not (drop and item["low_confidence"]):
            sentence_items[k]["words"].append(item)
    kept_sentences = [s for s in sentence_items if not (drop and s["low_confidence"])]
    kept_words = [w for w in word_items if not (drop and w["low_confidence"])]
    doc = {"format": JSON_FORMAT, "version": JSON_VERSION, "text": text,
           "audio_duration": None if duration is None else round(float(duration), 3),
           "confidence": None if confidence is None else _json_number(confidence, 3),
           "min_confidence": min_confidence,
           "dropped": {"sentences": len(sentence_items) - len(kept_sentences),
                       "words": len(word_items) - len(kept_words)},
           "sentences": kept_sentences, "words": kept_words}
    return _write(json.dumps(doc, ensure_ascii=False, indent=indent, allow_nan=False) + "\n", path)


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
