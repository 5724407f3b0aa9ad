"""Text-to-audio forced alignment through a synthetic rendering (in the spirit of aeneas).

:func:`align_text` finds when each word and sentence of a text is spoken in a
recording of it:

1. render the text with eSpeak NG (:func:`mmalign.features.speech.synthesize_speech`),
   which reports when each word starts and ends in the *synthetic* audio;
2. find the speech in the recording (:func:`mmalign.features.speech_activity.detect_speech`:
   energy with hysteresis against the recording's own noise floor, spectral
   flatness against broadband noise);
3. turn both signals, each at its own sampling rate, into frames of 13 MFCCs and
   their deltas (25 ms every 10 ms, numpy only: :mod:`mmalign.features.speech_frames`),
   normalised over the speech, plus a speech/non-speech column;
4. match every recording frame to one synthetic frame by DTW
   (:mod:`mmalign.apps._speech_dtw`): the rendering may advance 0-2 frames per
   recording frame, holding a frame costs 1.5 times as much, and a head or tail
   of the recording that matches nothing (music, noise) may be left out;
   recordings over about 40 s use multiscale DTW (:func:`mmalign.dtw_path`);
5. carry the synthetic word boundaries through the path onto the recording
   (:mod:`mmalign.apps._word_timing`), then pull word edges out of silences and
   make every pause of 80 ms or more a gap between two words;
6. score each word, sentence and the whole text: how much closer the matched
   synthetic frames are than typical ones, times how much better the rendering
   explains the recording forwards than played backwards, times how much of
   the rendering the path passes through (``confidence``).

The result, a :class:`TextAlignment`, holds word and sentence segments (times
in seconds of the recording, with their confidence) and writes them as SRT,
WebVTT, CSV, TSV, JSON, Praat TextGrid or Audacity labels
(:mod:`mmalign.apps.subtitles`).  The same steps run from the command line as
``mmalign subtitle AUDIO TEXT --out DIR``.  Nothing here imports librosa,
scipy.signal or numba for recordings up to about 40 s: a run is dominated by
starting Python.

The synthesiser must speak the recording's language (``voice``); on real read
speech (``python -m benchmarks forced_alignment_real``) an accent close to the
speaker's helped (``en-us`` for American readers).
"""

from __future__ import annotations

import os
import re
import textwrap
from typing import Callable

import numpy as np

from ..alignment import Alignment
from ..features.audio import _check_signal, _check_sr
from ..utils.validation import check_bool
from ._speech_dtw import frame_costs, monotone_path
from ._word_timing import (frame_quality, gaps_at_pauses, join_close_words, order_evidence, rendering_coverage,
                           snap_to_speech, span_mean, time_map)
from .subtitles import Segment, to_csv, to_srt, to_vtt

__all__ = ["TextAlignment", "align_text", "split_sentences", "speech_features", "Segment"]

SYNTH_SR = 22050            # eSpeak NG renders at 22050 Hz; the recording is analysed at its own rate
SYNTH_PAD = 0.2             # seconds of silence added before and after the rendering
N_MFCC = 13
SPEECH_WEIGHT = 3.0         # the speech/non-speech column of the features, against unit-variance MFCCs
# Above this many DTW cells (about 40 s against 40 s at 100 frames/s; 6 bytes each for the exact
# numpy DTW) ``method="auto"`` switches to multiscale DTW (memory and time linear in the lengths).
_EXACT_MAX_CELLS = 16_000_000
LEVELS = ("sentence", "word")
FEATURES = ("mfcc+delta", "mfcc")
MIN_PAUSE = 0.08            # silences this long (s) inside the speech become gaps between words
# Speech-activity edges and pauses are used when speech stands this far (dB) above the noise floor;
# in heavy noise or reverberation (under ~20 dB) they moved more boundaries wrongly than rightly.
RELIABLE_RANGE_DB = 25.0
# A recording frame left out of the path (music, noise or other talk before or after the text) costs this
# many times the median closest-match cost of the recording's frames (see _skip_cost).
SKIP_FACTOR = 2.0
# Matching a recording frame to the synthetic frame the previous one matched costs this many times the
# local cost (see mmalign.apps._speech_dtw.monotone_path): the rendering does not hold one sound for seconds.
HOLD_WEIGHT = 1.5
#: Confidence is a logistic function of frame quality x order evidence x coverage of the rendering
#: (:mod:`mmalign.apps._word_timing`), 0.5 at this product; on the development recordings the right
#: transcripts gave 0.066-0.24, other recordings' and unrelated transcripts 0.03 (median).
CONFIDENCE_MIDPOINT = 0.05
CONFIDENCE_WIDTH = 0.01
#: Below this overall confidence the text and the recording probably do not match.
LOW_CONFIDENCE = 0.5

_SENTENCE_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s|$)|\n\s*\n""")


def split_sentences(text: str) -> list[tuple[str, int, int]]:
    """Split ``text`` into sentences at ``.``, ``!``, ``?``, ``…`` and blank lines.

    A sentence ends after a run of terminal punctuation (and closing quotes or
    brackets) that is followed by white space or the end of the text; a blank
    line ends a paragraph and so a sentence.  Abbreviations such as "Mr." end a
    sentence too: give the text one sentence per paragraph if that matters.

    Parameters
    ----------
    text : str

    Returns
    -------
    sentences : list of (sentence, char_start, char_end)
        ``text[char_start:char_end] == sentence``, stripped of surrounding
        white space; empty pieces are left out.

    Examples
    --------
    >>> split_sentences('He said "Stop!" Then he left.\\n\\nA new paragraph')
    [('He said "Stop!"', 0, 15), ('Then he left.', 16, 29), ('A new paragraph', 31, 46)]
    """
    pieces, begin = [], 0
    for m in _SENTENCE_END.finditer(text):
        pieces.append((begin, m.end()))
        begin = m.end()
    pieces.append((begin, len(text)))
    out = []
    for a, b in pieces:
        chunk = text[a:b]
        stripped = chunk.strip()
        if stripped:
            a += len(chunk) - len(chunk.lstrip())
            out.append((stripped, a, a + len(stripped)))
    return out


def speech_features(y: np.ndarray, sr: int, *, spec=None, fmax: float = 8000.0,
                    speech: np.ndarray | None = None, deltas: bool = True,
                    normalize: bool = True, speech_weight: float = SPEECH_WEIGHT) -> np.ndarray:
    """Frames that forced alignment compares: MFCCs, their deltas and a speech column, ``(n_frames, n_features)``.

    13 MFCCs of 25 ms windows every 10 ms (:func:`mmalign.features.speech_frames.speech_mfcc`,
    40 mel bands from 60 Hz to ``fmax``), optionally with their deltas over
    ±2 frames; with ``normalize``, each column is scaled to zero mean and unit
    variance over the speech frames (cepstral mean and variance normalisation:
    it removes the level and channel differences between a clean synthetic
    voice and a noisy, reverberant recording, and the amount of silence around
    the speech does not move the statistics).  Given ``speech``, a last column
    holds ``speech_weight`` on speech frames and 0 elsewhere, so that DTW pays
    for matching speech with silence.

    Parameters
    ----------
    y : np.ndarray, shape=(n_samples,), floating
        Mono audio.
    sr : int > 0
        Sampling rate in Hz.
    spec : mmalign.features.speech_frames.FrameSpec or None
        Framing; default 25 ms every 10 ms at ``sr``.
    fmax : float > 0
        Highest mel frequency in Hz (capped at ``sr / 2``); give both signals the same.
    speech : np.ndarray, shape=(n_frames,), bool, or None
        Which frames hold speech (:func:`mmalign.features.speech_activity.detect_speech`).
    deltas : bool
        Append the deltas of the MFCCs.
    normalize : bool
        Mean and variance normalisation per column, over the speech frames.
    speech_weight : float >= 0
        Value of the speech column on speech frames.

    Returns
    -------
    F : np.ndarray, shape=(1 + n_samples // hop, 13 (+13) (+1)), float64

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> speech_features(y, 22050).shape
    (101, 26)
    """
    from ..features.speech_frames import FrameSpec, deltas as delta_of, speech_mfcc

    spec = spec or FrameSpec(sr)
    M = speech_mfcc(y, sr, n_mfcc=N_MFCC, spec=spec, fmax=fmax)
    if deltas:
        M = np.hstack([M, delta_of(M)])
    if speech is not None:
        speech = np.asarray(speech, dtype=bool)
        if speech.shape != (len(M),):
            raise ValueError(f"speech must be a bool mask of shape ({len(M)},), got shape {speech.shape}")
    if normalize:
        rows = M[speech] if speech is not None and speech.sum() >= 2 else M
        M = (M - rows.mean(axis=0)) / np.maximum(rows.std(axis=0), 1e-8)
    if speech is not None:
        M = np.hstack([M, speech_weight * speech[:, None].astype(np.float64)])
    return M


class TextAlignment:
    """Where each word and sentence of a text is spoken in a recording.

    Returned by :func:`align_text`.

    Attributes
    ----------
    text : str
        The aligned text.
    words : list of Segment
        Spoken words in text order: ``(text, start, end, char_start, char_end)``,
        times in seconds of the recording, ``text[char_start:char_end]`` the
        word without its edge punctuation.
    sentences : list of Segment
        Sentences (:func:`split_sentences`) that contain spoken words, from
        the start of their first word to the end of their last.
    duration : float
        Length of the recording in seconds.
    alignment : Alignment
        The DTW path between the synthetic rendering (side x) and the
        recording (side y), with ``frame_rate`` set.
    synthetic_words : list of mmalign.features.speech.Word
        The word timings in the synthetic rendering that were mapped.
    confidence : float
        How well the recording matched the text overall, in [0, 1] (NaN when
        unknown); below :data:`LOW_CONFIDENCE` the text is probably not what
        is said.  Each word and sentence has its own ``confidence``.
    speech : list of (start, end)
        The speech regions found in the recording, in seconds.
    """

    def __init__(self, text: str, words: list[Segment], sentences: list[Segment], duration: float,
                 alignment: Alignment, synthetic_words: list, *, confidence: float = float("nan"),
                 speech: list[tuple[float, float]] | None = None) -> None:
        self.text = text
        self.words = words
        self.sentences = sentences
        self.duration = duration
        self.alignment = alignment
        self.synthetic_words = synthetic_words
        self.confidence = confidence
        self.speech = list(speech) if speech is not None else []

    def __repr__(self) -> str:
        return (f"TextAlignment({len(self.words)} words, {len(self.sentences)} sentences, "
                f"{self.duration:.2f} s)")

    def segments(self, level: str = "sentence", *, line_length: int | None = None,
                 max_lines: int | None = None) -> list[Segment]:
        """The ``"sentence"`` or ``"word"`` segments.

        Parameters
        ----------
        level : {"sentence", "word"}
        line_length, max_lines : int > 0 or None
            Given both, a sentence whose text wraps to more than ``max_lines``
            lines of ``line_length`` characters is cut, between words, into
            several segments that fit (subtitle cues), each timed by its own
            words; cuts go after commas, semicolons, colons or dashes where
            possible, and the pieces come out of even length.
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if level == "word":
            return list(self.words)
        if line_length is None or max_lines is None:
            return list(self.sentences)
        for name, value in (("line_length", line_length), ("max_lines", max_lines)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        out = []
        for sentence in self.sentences:
            inside = [w for w in self.words if sentence.char_start <= w.char_start < sentence.char_end]
            out.extend(_split_segment(self.text, sentence, inside, int(line_length), int(max_lines)))
        return out

    def word_times(self) -> np.ndarray:
        """``(n_words, 2)`` start and end of every word, in seconds."""
        return np.array([[w.start, w.end] for w in self.words], dtype=np.float64).reshape(-1, 2)

    def to_csv(self, path: str | os.PathLike | None = None, *, level: str = "word") -> str:
        """CSV ``start,end,text,char_start,char_end`` (see :func:`mmalign.apps.subtitles.to_csv`)."""
        return to_csv(self.segments(level), path)

    def to_tsv(self, path: str | os.PathLike | None = None, *, level: str = "word") -> str:
        """Tab-separated ``start<TAB>end<TAB>text<TAB>confidence`` (see :func:`mmalign.apps.subtitles.to_tsv`)."""
        from .subtitles import to_tsv

        return to_tsv(self.segments(level), path)

    def to_audacity(self, path: str | os.PathLike | None = None, *, level: str = "sentence") -> str:
        """Audacity label track, one label per sentence or word (see :func:`mmalign.apps.subtitles.to_audacity`)."""
        from .subtitles import to_audacity

        return to_audacity(self.segments(level), path)

    def to_textgrid(self, path: str | os.PathLike | None = None) -> str:
        """Praat TextGrid with two interval tiers, ``"sentences"`` and ``"words"``, over the whole recording.

        See :func:`mmalign.apps.subtitles.to_textgrid`.
        """
        from .subtitles import to_textgrid

        return to_textgrid({"sentences": self.sentences, "words": self.words}, path, duration=self.duration)

    def to_json(self, path: str | os.PathLike | None = None, *, min_confidence: float | None = None,
                low_confidence: str = "flag", indent: int | None = 2) -> str:
        """Text, duration, overall confidence, sentences with their words and all words, as JSON.

        Schema ``"mmalign-alignment"`` version 1, documented in
        :func:`mmalign.apps.subtitles.to_json`; ``min_confidence`` and
        ``low_confidence`` (``"flag"`` or ``"drop"``) as there.
        """
        from .subtitles import to_json

        return to_json(self.sentences, self.words, path, text=self.text, duration=self.duration,
                       confidence=getattr(self, "confidence", float("nan")), min_confidence=min_confidence,
                       low_confidence=low_confidence, indent=indent)

    def to_srt(self, path: str | os.PathLike | None = None, *, level: str = "sentence",
               line_length: int | None = 42, max_lines: int | None = 2) -> str:
        """SubRip subtitles, one cue per sentence or word (see :func:`mmalign.apps.subtitles.to_srt`).

        Cue text is wrapped at ``line_length`` characters; a sentence that
        wraps to more than ``max_lines`` lines becomes several cues (see
        :meth:`segments`; ``max_lines=None`` keeps one cue per sentence).
        """
        return to_srt(self.segments(level, line_length=line_length, max_lines=max_lines), path,
                      line_length=line_length)

    def to_vtt(self, path: str | os.PathLike | None = None, *, level: str = "sentence",
               line_length: int | None = 42, max_lines: int | None = 2) -> str:
        """WebVTT subtitles, one cue per sentence or word (see :func:`mmalign.apps.subtitles.to_vtt`).

        Wrapping and splitting of long sentences as in :meth:`to_srt`.
        """
        return to_vtt(self.segments(level, line_length=line_length, max_lines=max_lines), path,
                      line_length=line_length)


def align_text(
    text: str,
    audio: np.ndarray,
    sr: int,
    *,
    voice: str = "en-us",
    rate_wpm: int = 175,
    features: str = "mfcc+delta",
    method: str = "auto",
    edges: bool = True,
    progress: bool = False,
) -> TextAlignment:
    """Find the start and end time of every word and sentence of ``text`` in ``audio``.

    Parameters
    ----------
    text : str
        What is said in the recording, in order.
    audio : np.ndarray, shape=(n_samples,), floating
        Mono recording, samples in ``[-1, 1]``, at least 0.05 s.
    sr : int > 0
        Sampling rate of ``audio`` in Hz.  Both the recording and the synthetic
        rendering (22050 Hz) are analysed at their own rate, with 25 ms windows
        every 10 ms and mel bands up to the lower Nyquist frequency.
    voice : str
        eSpeak NG voice for the synthetic rendering: the recording's language
        (``"en"``, ``"en-us"``, ``"de"``, ...); see
        :func:`mmalign.features.speech.list_voices`.
    rate_wpm : int in [80, 450]
        Speaking rate of the synthetic rendering, words per minute.
    features : {"mfcc+delta", "mfcc"}
        Frame features compared by DTW: 13 MFCCs (:func:`mmalign.features.speech_frames.speech_mfcc`)
        with or without their deltas, normalised per coefficient (mean and
        variance over the speech frames of each signal), plus a speech/non-speech
        column so that silence matches silence.
    method : {"auto", "exact", "multiscale"}
        DTW solver: ``"exact"`` matches every recording frame to one synthetic
        frame (numpy, memory ``n_synthetic x n_recording`` cells, see
        :mod:`mmalign.apps._speech_dtw`), ``"multiscale"`` is
        :func:`mmalign.dtw_path`'s multiscale DTW (memory linear in the
        lengths, numba); ``"auto"`` picks multiscale above 16 million cells
        (about 40 s of speech against 40 s).
    edges : bool
        Use speech-activity detection (:func:`mmalign.features.speech_activity.detect_speech`):
        the first word starts where speech starts, the last ends where it ends,
        and pauses of 80 ms or longer become gaps between words.  Applied when
        the speech stands at least 25 dB above the noise floor (the detector's
        ``dynamic_range_db``); in heavier noise the DTW path alone decides.
    progress : bool
        Show a progress bar (tqdm) over the synthesis and alignment steps.

    Returns
    -------
    result : TextAlignment
        ``result.words`` and ``result.sentences`` are lists of
        :class:`mmalign.apps.subtitles.Segment` ``(text, start, end, char_start,
        char_end, confidence)``, times in seconds of ``audio``, non-decreasing and within
        ``[0, len(audio) / sr]``; ``result.confidence`` scores the whole text
        (below :data:`LOW_CONFIDENCE`: the text and the audio probably do not match).

    Raises
    ------
    ValueError
        Empty text or text with no speakable word, bad audio (empty, not 1-D,
        not floating point, NaN), unknown voice or option.
    ImportError
        If eSpeak NG is not installed (``pip install "mmalign[speech]"``).

    Notes
    -----
    A synthetic instant maps to the mean recording frame matched to its
    frame, linearly interpolated between frames, so boundaries are not
    restricted to the 10 ms frame grid.  A synthetic word that starts within
    0.1 s of the previous one's end starts at that end: the silent closure
    of a stop consonant ("clubs") belongs to its word, as phoneticians and
    acoustic-model aligners count it.

    Confidence: per recording frame, ``q = 1 - cost(matched) / median cost``
    against the synthetic frames; over the text, ``o = 1 - cost(path) / cost
    of the path for the rendering played backwards``; per synthetic frame,
    ``c = 1`` if the path visits it.  A word's (sentence's) confidence is a
    logistic function of ``mean q over its recording frames x o x mean c over
    its synthetic frames``, 0.5 at :data:`CONFIDENCE_MIDPOINT`; the overall one
    uses every sounding frame of the recording (those left out of the path
    counting 0) and every speech frame of the rendering.

    Examples
    --------
    Needs eSpeak NG (``pip install "mmalign[speech]"``), used here to make a
    "recording" too:

    >>> from mmalign.features.speech import synthesize_speech
    >>> rec, sr, truth = synthesize_speech("The cat sat on the mat.", voice="en-gb", rate_wpm=140)  # doctest: +SKIP
    >>> result = align_text("The cat sat on the mat.", rec, sr, voice="en-us")                    # doctest: +SKIP
    >>> [w.text for w in result.words]                                                             # doctest: +SKIP
    ['The', 'cat', 'sat', 'on', 'the', 'mat']
    >>> print(result.to_srt(), end="")                                                             # doctest: +SKIP
    1
    00:00:00,010 --> 00:00:01,474
    The cat sat on the mat.
    """
    from ..features.speech import synthesize_speech
    from ..features.speech_activity import detect_speech
    from ..features.speech_frames import FrameSpec

    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty: nothing to align")
    audio = np.asarray(audio)
    if audio.ndim == 2 and 1 in audio.shape:
        audio = audio.reshape(-1)
    if audio.ndim != 1:
        raise ValueError(f"audio must be a mono signal of shape (n_samples,), got shape {audio.shape}; "
                         "average the channels first (audio.mean(axis=1) for time-first stereo)")
    if audio.size == 0:
        raise ValueError("audio is empty")
    audio = _check_signal(audio)
    _check_sr(sr)
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
    if method not in ("auto", "exact", "multiscale"):
        raise ValueError(f"method must be 'auto', 'exact' or 'multiscale', got {method!r}")
    edges = check_bool(edges, "edges")
    spec_y = FrameSpec(sr)
    if len(audio) < 5 * spec_y.hop_length:
        raise ValueError(f"audio is too short to align: {len(audio) / sr * 1000:.0f} ms, need at least 50 ms")

    steps = ["synthesise", "features", "DTW", "map"]
    bar = _Progress(steps, enabled=progress)
    try:
        bar.step("synthesise")
        synthetic = synthesize_speech(text, voice=voice, rate_wpm=rate_wpm, sr=SYNTH_SR,
                                      progress=bar.chars(len(text)))
        if not synthetic.words:
            raise ValueError(f"the synthesiser spoke no word of the text {text[:60]!r}")
        synthetic = _with_silence(synthetic, SYNTH_PAD)
        bar.step("features")
        spec_x = FrameSpec(SYNTH_SR)
        fmax = min(SYNTH_SR, sr) / 2.0
        activity = detect_speech(audio, sr, spec=spec_y, min_pause=MIN_PAUSE)
        speech_x = _synthetic_speech_mask(synthetic.words, spec_x.n_frames(len(synthetic.audio)),
                                          spec_x.frame_rate)
        x = speech_features(synthetic.audio, SYNTH_SR, spec=spec_x, fmax=fmax, speech=speech_x,
                            deltas=features == "mfcc+delta")
        y = speech_features(audio, sr, spec=spec_y, fmax=fmax, speech=activity.mask,
                            deltas=features == "mfcc+delta")
        bar.step("DTW")
        rate_y = spec_y.frame_rate
        if method == "auto":
            method = "multiscale" if len(x) * len(y) > _EXACT_MAX_CELLS else "exact"
        # a clear silence or noise before and after the speech is left out of the DTW (the aligner may still
        # leave music or other sounds at either end unmatched: _warp_paths)
        reliable = edges and activity.mask.any() and activity.dynamic_range_db >= RELIABLE_RANGE_DB
        lo, hi = 0, len(y)
        if reliable:
            spoken = np.flatnonzero(activity.mask)
            margin = int(round(SYNTH_PAD * rate_y))
            lo, hi = max(0, spoken[0] - margin), min(len(y), spoken[-1] + 1 + margin)
        x_of_y, x_of_y_reversed, first, last = _warp_paths(x, y[lo:hi], method)
        x_of_y, x_of_y_reversed = (_padded(p, lo, len(y), len(x)) for p in (x_of_y, x_of_y_reversed))
        first, last = first + lo, last + lo
        path = np.column_stack([x_of_y, np.arange(len(y))])[first:last + 1]
        alignment = Alignment(path, shape=(len(x), len(y)), frame_rate=spec_y.frame_rate,
                              extras={"frame_rate_x": spec_x.frame_rate})
        bar.step("map")
        duration = len(audio) / sr
        segment = time_map(x_of_y[first:last + 1], spec_x.frame_rate, rate_y)
        rendered = join_close_words(np.array([[w.start, w.end] for w in synthetic.words]))
        times = np.clip(segment(rendered) + first / rate_y, 0.0, duration)
        # speech regions inside the part of the recording the text was matched to (not a skipped head or tail)
        within = np.zeros(len(y), dtype=bool)
        within[first:last + 1] = True
        speech = activity.mask & within
        if reliable and speech.any():
            regions = _regions(speech, rate_y, duration)
            pauses = [(a[1], b[0]) for a, b in zip(regions, regions[1:])]
            silences = [(0.0, regions[0][0]), *pauses, (regions[-1][1], duration)]
            times = snap_to_speech(times, [(a, b) for a, b in silences if b > a])
            times = gaps_at_pauses(times, pauses)
        if not speech.any():
            speech = within
        quality = frame_quality(x, y, x_of_y)
        quality[~within] = 0.0          # sound the text was not matched to counts against the overall score
        order = order_evidence(x, y, x_of_y, x_of_y_reversed, speech)
        covered = rendering_coverage(x_of_y[first:last + 1], speech_x)
        rate_x = spec_x.frame_rate
        words = [Segment(w.word, float(t0), float(t1), w.char_start, w.char_end,
                         _confidence(span_mean(quality, rate_y, t0, t1), order,
                                     span_mean(covered, rate_x, w.start, w.end)))
                 for w, (t0, t1) in zip(synthetic.words, times)]
        sentences = []
        for s in _sentences(text, words):
            inside = [w for w in synthetic.words if s.char_start <= w.char_start < s.char_end]
            sentences.append(s._replace(confidence=_confidence(
                span_mean(quality, rate_y, s.start, s.end), order,
                span_mean(covered, rate_x, inside[0].start, inside[-1].end))))
        sounding = activity.mask.copy()
        sounding[:lo] = sounding[hi:] = False
        overall = _confidence(float(quality[sounding | speech].mean()), order, float(covered[speech_x].mean()))
        bar.step(None)
    finally:
        bar.close()
    return TextAlignment(text, words, sentences, duration, alignment, list(synthetic.words),
                         confidence=overall, speech=activity.intervals)


def _warp_paths(x: np.ndarray, y: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Match every recording frame to a synthetic frame, skipping a head and tail that the text is not in.

    Returns the synthetic frame of each recording frame for the rendering and
    for the rendering played backwards (both matched over the same part of the
    recording), and the first and last recording frame of that part.
    """
    if method == "exact":
        costs = frame_costs(x, y)
        x_of_y, first, last = monotone_path(costs, skip_cost=_skip_cost(costs, y[:, -1] > 0),
                                            hold_weight=HOLD_WEIGHT)
        reversed_part, _, _ = monotone_path(costs[::-1, first:last + 1], hold_weight=HOLD_WEIGHT)
        return x_of_y, _padded(reversed_part, first, len(y), len(x)), first, last
    # long recordings: find the head and tail on frames pooled to fit the exact solver, then multiscale DTW
    from ..warping import dtw_path

    k = int(np.ceil(np.sqrt(len(x) * len(y) / _EXACT_MAX_CELLS)))
    coarse = frame_costs(_pooled(x, k), _pooled(y, k))
    _, first, last = monotone_path(coarse, skip_cost=_skip_cost(coarse, _pooled(y, k)[:, -1] > 0),
                                   hold_weight=HOLD_WEIGHT)
    first, last = first * k, min(len(y) - 1, (last + 1) * k - 1)
    part = y[first:last + 1]
    paths = [_x_of_y(dtw_path(xx, part, metric="sqeuclidean", method="multiscale").path(), len(part))
             for xx in (x, x[::-1])]
    return (_padded(paths[0], first, len(y), len(x)), _padded(paths[1], first, len(y), len(x)), first, last)


def _skip_cost(costs: np.ndarray, speech: np.ndarray) -> float:
    """Cost of leaving one recording frame out of the path (head or tail).

    ``SKIP_FACTOR`` times the median, over the recording's speech frames, of
    each frame's cost against its closest synthetic frame: a frame of the
    spoken text has a close synthetic frame, music or noise has none.
    """
    step = max(1, len(costs) // 500)
    closest = costs[::step].min(axis=0)
    return float(SKIP_FACTOR * np.median(closest[speech] if speech.sum() >= 10 else closest))


def _pooled(frames: np.ndarray, k: int) -> np.ndarray:
    n = len(frames) // k * k
    head = frames[:n].reshape(-1, k, frames.shape[1]).mean(axis=1)
    return head if n == len(frames) else np.vstack([head, frames[n:].mean(axis=0, keepdims=True)])


def _padded(part: np.ndarray, first: int, n_y: int, n_x: int) -> np.ndarray:
    """A path over recording frames ``first ...`` extended to all ``n_y``: 0 before, ``n_x - 1`` after."""
    out = np.full(n_y, n_x - 1, dtype=np.int64)
    out[:first] = 0
    out[first:first + len(part)] = part
    return out


def _regions(mask: np.ndarray, rate: float, duration: float) -> list[tuple[float, float]]:
    """Runs of True frames as ``(start, end)`` seconds (frame ``i`` covers ``(i ± 0.5) / rate``)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(max(0.0, (a - 0.5) / rate), min(duration, (b - 0.5) / rate)) for a, b in zip(edges[::2], edges[1::2])]


def _with_silence(speech, seconds: float):
    """The rendering with ``seconds`` of silence before and after it, word times shifted to match.

    eSpeak starts speaking within a few milliseconds: without a silence of its own
    to hold, the path would spend a recording's leading silence on the first word.
    """
    pad = np.zeros(int(round(seconds * speech.sr)), dtype=speech.audio.dtype)
    shift = len(pad) / speech.sr
    words = [w._replace(start=w.start + shift, end=w.end + shift) for w in speech.words]
    return speech._replace(audio=np.concatenate([pad, speech.audio, pad]), words=words)


def _confidence(quality: float, order: float, coverage: float) -> float:
    """Match quality x order evidence x coverage of the rendering, through a logistic: 0.5 at ``CONFIDENCE_MIDPOINT``."""
    z = (quality * order * coverage - CONFIDENCE_MIDPOINT) / CONFIDENCE_WIDTH
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))


def _synthetic_speech_mask(words, n_frames: int, rate: float) -> np.ndarray:
    """Frames of the rendering inside a word: eSpeak reports where each word's sound starts and ends."""
    centres = np.arange(n_frames) / rate
    mask = np.zeros(n_frames, dtype=bool)
    for w in words:
        mask |= (centres >= w.start) & (centres < w.end)
    return mask


def _x_of_y(path: np.ndarray, n_y: int) -> np.ndarray:
    """One synthetic frame per recording frame from a DTW path: the mean of its matches, rounded."""
    counts = np.bincount(path[:, 1], minlength=n_y)
    sums = np.bincount(path[:, 1], weights=path[:, 0], minlength=n_y)
    return np.maximum.accumulate(np.rint(sums / np.maximum(counts, 1)).astype(np.int64))


_CLAUSE_END = tuple(",;:\u2013\u2014")


def _split_segment(text: str, sentence: Segment, words: list[Segment], line_length: int,
                   max_lines: int) -> list[Segment]:
    """Cut a sentence into cues that wrap to at most ``max_lines`` lines of ``line_length`` characters.

    Cuts fall between words; among the cuttings with the fewest cues, the one
    with the most even cue lengths wins, and a cut after a comma, semicolon,
    colon or dash counts as half a cut.
    """
    def cue_text(i: int, k: int) -> str:                   # words i .. k - 1
        begin = sentence.char_start if i == 0 else words[i].char_start
        end = sentence.char_end if k == len(words) else words[k].char_start
        return " ".join(text[begin:end].split())

    def fits(piece: str) -> bool:
        return len(textwrap.wrap(piece, line_length, break_long_words=False)) <= max_lines

    if fits(sentence.text) or len(words) < 2:
        return [sentence]
    limit = line_length * max_lines
    best = [0.0] + [np.inf] * len(words)                    # best[k]: cost of cutting words[:k]
    back = [0] * (len(words) + 1)
    for k in range(1, len(words) + 1):
        for i in range(k - 1, -1, -1):
            piece = cue_text(i, k)
            if i < k - 1 and not fits(piece):
                break
            clause = k == len(words) or piece.endswith(_CLAUSE_END)
            cost = best[i] + (0.5 if clause else 1.0) + 0.5 * ((limit - len(piece)) / limit) ** 2
            if cost < best[k]:
                best[k], back[k] = cost, i
    cuts, k = [], len(words)
    while k > 0:
        cuts.append((back[k], k))
        k = back[k]
    pieces = []
    for i, k in reversed(cuts):
        begin = sentence.char_start if i == 0 else words[i].char_start
        end = sentence.char_end if k == len(words) else words[k].char_start
        raw = text[begin:end]
        chunk = raw.strip()
        begin += len(raw) - len(raw.lstrip())
        pieces.append(Segment(chunk, words[i].start, max(w.end for w in words[i:k]), begin, begin + len(chunk)))
    return pieces


def _sentences(text: str, words: list[Segment]) -> list[Segment]:
    out = []
    starts = np.array([w.char_start for w in words])
    for sentence, c0, c1 in split_sentences(text):
        inside = [words[k] for k in np.flatnonzero((starts >= c0) & (starts < c1))]
        if inside:
            out.append(Segment(sentence, inside[0].start, max(w.end for w in inside), c0, c1))
    return out


class _Progress:
    """A tqdm bar over named steps, with the synthesis step advanced by characters."""

    def __init__(self, steps: list[str], *, enabled: bool) -> None:
        self._bar = None
        self._steps = steps
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=100, desc="align", unit="%", leave=False,
                             bar_format="{desc:<22}{percentage:3.0f}%|{bar}| {elapsed}")
        self._done = 0.0

    def step(self, name: str | None) -> None:
        if self._bar is None:
            return
        index = len(self._steps) if name is None else self._steps.index(name)
        self._advance(100.0 * (0.5 if index >= 1 else 0.0) + 50.0 * max(index - 1, 0) / (len(self._steps) - 1))
        self._bar.set_description(f"align: {name}" if name else "align: done")

    def chars(self, n_chars: int) -> Callable[[int], None] | None:
        """A callback for :func:`synthesize_speech` that moves the bar over the first half."""
        if self._bar is None:
            return None
        return lambda position: self._advance(50.0 * min(position, n_chars) / max(n_chars, 1))

    def _advance(self, to: float) -> None:
        if to > self._done:
            self._bar.update(to - self._done)
            self._done = to

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
