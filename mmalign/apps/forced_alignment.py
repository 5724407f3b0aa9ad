"""Text-to-audio forced alignment through a synthetic rendering (in the spirit of aeneas).

:func:`align_text` finds when each word and sentence of a text is spoken in a
recording of it:

1. render the text with eSpeak NG (:func:`mmalign.features.speech.synthesize_speech`),
   which reports when each word starts and ends in the *synthetic* audio;
2. turn both the synthetic rendering and the recording into MFCC frames
   (23 ms windows every 11.6 ms at 22050 Hz by default);
3. align the two frame sequences with DTW (:func:`mmalign.dtw_path`, L1 frame
   distance, multiscale for long recordings);
4. carry the synthetic word boundaries through the warping path onto the
   recording's time axis.

The result, a :class:`TextAlignment`, holds word and sentence segments (times
in seconds of the recording) and writes them as CSV, SRT or WebVTT
(:mod:`mmalign.apps.subtitles`).  The same steps run from the command line as
``mmalign subtitle AUDIO TEXT --out DIR``.

The synthesiser must speak the recording's language (``voice``); the recording
should hold the text and little else (long music or unrelated talk before or
after it is not skipped).
"""

from __future__ import annotations

import os
import re
import textwrap
from typing import Callable

import numpy as np

from ..alignment import Alignment
from ..features.audio import _check_signal, _check_sr, mfcc
from .subtitles import Segment, to_csv, to_srt, to_vtt

__all__ = ["TextAlignment", "align_text", "split_sentences", "speech_features", "Segment"]

SYNTH_SR = 22050            # eSpeak NG renders at 22050 Hz; recordings are resampled to it
HOP_LENGTH = 256            # 11.6 ms at 22050 Hz
N_FFT = 512                 # 23 ms analysis window: speech-sized, not librosa's 93 ms music default
N_MFCC = 13
# Above this many DTW cells (about 73 s against 73 s at 86 frames/s; one byte each for exact DTW)
# ``method="auto"`` switches to multiscale DTW (memory and time linear in the lengths).
_EXACT_MAX_CELLS = 40_000_000
LEVELS = ("sentence", "word")
FEATURES = ("mfcc", "mfcc-raw")

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


def speech_features(y: np.ndarray, sr: int, *, hop_length: int = HOP_LENGTH, n_fft: int = N_FFT,
                    n_mfcc: int = N_MFCC, normalize: bool = True) -> np.ndarray:
    """MFCCs with a speech-sized window, time first: ``(n_frames, n_mfcc)``, float64.

    :func:`mmalign.features.mfcc` (128 mel bands, coefficient 0 the log energy)
    with an ``n_fft``-sample window instead of its 2048 (93 ms at 22050 Hz,
    sized for music); frame ``i`` is centred on ``i * hop_length / sr`` seconds.
    With ``normalize``, each coefficient is scaled to zero mean and unit
    variance over the signal (cepstral mean and variance normalisation): it removes the level and channel differences
    between a clean synthetic voice and a noisy, reverberant recording, which
    otherwise dominate the frame distances (on the recipe's 10 dB SNR +
    0.5 s reverb condition it turns a failed alignment into a 30 ms median
    error).

    Parameters
    ----------
    y : np.ndarray, shape=(n_samples,), floating
        Mono audio.
    sr : int > 0
        Sampling rate in Hz.
    hop_length, n_fft, n_mfcc : int > 0
        Hop and window in samples; number of coefficients.
    normalize : bool
        Per-coefficient mean and variance normalisation over the whole signal.

    Returns
    -------
    M : np.ndarray, shape=(1 + n_samples // hop_length, n_mfcc), float64

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> speech_features(y, 22050).shape
    (87, 13)
    """
    # Column-major, as librosa's coefficient-first output transposed: the normalisation sums each
    # coefficient over contiguous memory, in the same order as always (same bits).
    M = mfcc(y, sr, n_mfcc=n_mfcc, hop_length=hop_length, n_fft=n_fft).astype(np.float64, order="F")
    if normalize:
        M = (M - M.mean(axis=0)) / np.maximum(M.std(axis=0), 1e-8)
    return np.ascontiguousarray(M)


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
    """

    def __init__(self, text: str, words: list[Segment], sentences: list[Segment], duration: float,
                 alignment: Alignment, synthetic_words: list) -> None:
        self.text = text
        self.words = words
        self.sentences = sentences
        self.duration = duration
        self.alignment = alignment
        self.synthetic_words = synthetic_words

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
    voice: str = "en",
    rate_wpm: int = 175,
    features: str = "mfcc",
    hop_length: int = HOP_LENGTH,
    n_mfcc: int = N_MFCC,
    metric: str = "cityblock",
    method: str = "auto",
    radius: int | None = None,
    progress: bool = False,
) -> TextAlignment:
    """Find the start and end time of every word and sentence of ``text`` in ``audio``.

    Parameters
    ----------
    text : str
        What is said in the recording, in order.
    audio : np.ndarray, shape=(n_samples,), floating
        Mono recording, samples in ``[-1, 1]``.
    sr : int > 0
        Sampling rate of ``audio`` in Hz (resampled to 22050 Hz internally).
    voice : str
        eSpeak NG voice for the synthetic rendering: the recording's language
        (``"en"``, ``"en-us"``, ``"de"``, ...); see
        :func:`mmalign.features.speech.list_voices`.
    rate_wpm : int in [80, 450]
        Speaking rate of the synthetic rendering, words per minute; the
        closer to the recording's, the less DTW has to warp.
    features : {"mfcc", "mfcc-raw"}
        Frame features compared by DTW: :func:`speech_features` with
        (``"mfcc"``) or without (``"mfcc-raw"``) mean and variance
        normalisation per coefficient.
    hop_length : int > 0
        Hop between frames at 22050 Hz, in samples (256: 11.6 ms).
    n_mfcc : int > 0
        Number of MFCCs.
    metric : str
        DTW local cost between frames, any metric of :func:`mmalign.dtw`.
        The default, ``"cityblock"`` (L1) on normalised MFCCs, had the
        smallest errors on the recipe's three conditions (``"sqeuclidean"``:
        p95 53 / 10 / 70 ms against 44-48 / 9 / 54-63 ms).
    method : {"auto", "exact", "multiscale"}
        DTW solver: ``"exact"`` stores one byte per cell of the
        ``n_synthetic x n_recording`` frame grid, ``"multiscale"`` is linear
        in the lengths (near-optimal); ``"auto"`` picks multiscale above 40
        million cells (about 73 s of speech against 73 s).
    radius : int >= 0 or None
        Optional Sakoe-Chiba band in frames (exact DTW only).
    progress : bool
        Show a progress bar (tqdm) over the synthesis and alignment steps.

    Returns
    -------
    result : TextAlignment
        ``result.words`` and ``result.sentences`` are lists of
        :class:`mmalign.apps.subtitles.Segment` ``(text, start, end, char_start,
        char_end)``, times in seconds of ``audio``, non-decreasing and within
        ``[0, len(audio) / sr]``.

    Raises
    ------
    ValueError
        Empty text or text with no speakable word, bad audio (empty, not 1-D,
        not floating point, NaN), unknown voice or option.
    ImportError
        If eSpeak NG is not installed (``pip install "mmalign[speech]"``).

    Notes
    -----
    A synthetic instant ``t`` maps to the mean recording frame matched to its
    frame by the warping path, linearly interpolated between frames, so
    boundaries are not restricted to the frame grid.

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
    from ..warping import dtw_path

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
    if method == "multiscale" and radius is not None:
        raise ValueError("radius applies to exact DTW; leave it None with method='multiscale'")

    steps = ["synthesise", "features", "DTW", "map"]
    bar = _Progress(steps, enabled=progress)
    try:
        bar.step("synthesise")
        synthetic = synthesize_speech(text, voice=voice, rate_wpm=rate_wpm, sr=SYNTH_SR,
                                      progress=bar.chars(len(text)))
        if not synthetic.words:
            raise ValueError(f"the synthesiser spoke no word of the text {text[:60]!r}")
        bar.step("features")
        recording = audio
        if sr != SYNTH_SR:
            import librosa

            recording = librosa.resample(audio, orig_sr=sr, target_sr=SYNTH_SR)
        options = dict(hop_length=hop_length, n_mfcc=n_mfcc, normalize=features == "mfcc")
        x = speech_features(synthetic.audio, SYNTH_SR, **options)
        y = speech_features(recording, SYNTH_SR, **options)
        bar.step("DTW")
        if method == "auto":
            method = "multiscale" if len(x) * len(y) > _EXACT_MAX_CELLS and radius is None else "exact"
        estimate = dtw_path(x, y, metric=metric, method=method,
                                    radius=radius if method == "exact" else None)
        rate = SYNTH_SR / hop_length
        alignment = Alignment(estimate.path(), cost=estimate.cost, shape=estimate.shape, frame_rate=rate,
                              extras=estimate.extras)
        bar.step("map")
        duration = len(audio) / sr
        warp = _time_map(alignment.path(), len(x), rate)
        words = []
        for w in synthetic.words:
            start, end = (float(np.clip(t, 0.0, duration)) for t in warp(np.array([w.start, w.end])))
            words.append(Segment(w.word, start, end, w.char_start, w.char_end))
        sentences = _sentences(text, words)
        bar.step(None)
    finally:
        bar.close()
    return TextAlignment(text, words, sentences, duration, alignment, list(synthetic.words))


def _time_map(path: np.ndarray, n_x: int, rate: float) -> Callable[[np.ndarray], np.ndarray]:
    """Seconds on side x -> seconds on side y: mean matched y frame per x frame, interpolated."""
    counts = np.bincount(path[:, 0], minlength=n_x)
    mean_y = np.bincount(path[:, 0], weights=path[:, 1], minlength=n_x) / np.maximum(counts, 1)
    frames = np.arange(n_x)

    def warp(t: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(t) * rate, frames, mean_y) / rate

    return warp


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
