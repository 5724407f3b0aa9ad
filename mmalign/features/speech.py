"""Speech synthesis with word timings, through the eSpeak NG library.

:func:`synthesize_speech` renders a text with `eSpeak NG
<https://github.com/espeak-ng/espeak-ng>`_ and returns the audio together with
the start and end time of every word, taken from the synthesiser's own word
events.  It is the template side of :func:`mmalign.apps.forced_alignment.align_text`
and the ground truth of the forced-alignment recipe.

The library is found, in this order:

1. the ``espeakng-loader`` wheel from PyPI (``pip install "mmalign[speech]"``),
   which ships ``libespeak-ng`` and its voice data;
2. a system ``libespeak-ng`` (e.g. Debian's ``libespeak-ng1``), with its
   default data directory.

eSpeak NG is GPL-3.0-or-later; mmalign does not bundle it, it only loads the
installed library at run time (``ctypes``).  eSpeak keeps global state (one
voice, one set of parameters, one callback per process), so every call holds a
module lock: calls from several threads are safe but run one at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["Word", "Speech", "synthesize_speech", "list_voices", "espeak_version", "tokenize_words"]

# --------------------------------------------------------------------------- speak_lib.h (API revision 12)
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
espeakCHARS_UTF8 = 1
espeakINITIALIZE_DONT_EXIT = 0x8000
espeakRATE, espeakVOLUME, espeakPITCH = 1, 2, 3
espeakRATE_MINIMUM, espeakRATE_MAXIMUM = 80, 450
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_END, EVENT_MSG_TERMINATED = 0, 1, 2, 5, 6
EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT``; ``text_position`` is 1-based, in characters; ``sample`` counts output samples."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """``espeak_VOICE``; ``languages`` is a run of (priority byte, NUL-terminated name), ending with a 0 byte."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

_LOCK = threading.RLock()
_STATE: dict = {}        # lib, sample_rate, callback, source; filled once by _engine()
_SINK: dict = {}         # per-call buffers the callback writes into (guarded by _LOCK)

INSTALL_HINT = ('pip install "mmalign[speech]"  (the espeakng-loader wheel), '
                "or install the system library (Debian/Ubuntu: apt-get install libespeak-ng1)")


class Word(NamedTuple):
    """One word of a synthesised text.

    ``start`` / ``end`` in seconds; ``char_start`` / ``char_end`` index the
    text (Python ``str`` indices, end exclusive), so ``text[char_start:char_end]
    == word``.
    """

    word: str
    start: float
    end: float
    char_start: int
    char_end: int


class Speech(NamedTuple):
    """What :func:`synthesize_speech` returns: ``audio, sr, words = speech``."""

    audio: np.ndarray
    sr: int
    words: list


# --------------------------------------------------------------------------- engine


def _load_library() -> tuple[ctypes.CDLL, bytes | None, str]:
    try:
        import espeakng_loader
    except ImportError:
        espeakng_loader = None
    if espeakng_loader is not None:
        path = espeakng_loader.get_library_path()
        try:
            return ctypes.CDLL(path), espeakng_loader.get_data_path().encode(), f"espeakng-loader ({path})"
        except (OSError, RuntimeError) as err:
            raise ImportError(f"espeakng-loader is installed but its eSpeak NG library failed to load: {err}") from None
    name = ctypes.util.find_library("espeak-ng")
    if name is not None:
        try:
            return ctypes.CDLL(name), None, f"system library {name}"
        except OSError:
            pass
    raise ImportError("speech synthesis needs the eSpeak NG library, which was not found: " + INSTALL_HINT)


def _engine() -> dict:
    """Load and initialise eSpeak NG once per process (call with ``_LOCK`` held)."""
    if _STATE:
        return _STATE
    lib, data_path, source = _load_library()
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_Callback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, espeakINITIALIZE_DONT_EXIT)
    if sample_rate <= 0:
        raise RuntimeError(f"eSpeak NG failed to initialise (data path {data_path!r}, library from {source})")
    callback = _Callback(_on_audio)     # kept alive in _STATE for the life of the process
    lib.espeak_SetSynthCallback(callback)
    _STATE.update(lib=lib, sample_rate=int(sample_rate), callback=callback, source=source)
    return _STATE


def _on_audio(wav, n_samples: int, events) -> int:
    """eSpeak's synth callback: collect samples and events; return 1 to abort."""
    try:
        if wav and n_samples > 0:
            _SINK["chunks"].append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type in (EVENT_WORD, EVENT_SENTENCE, EVENT_END):
                _SINK["events"].append((e.type, e.text_position, e.length, e.sample))
                if _SINK["progress"] is not None and e.type == EVENT_WORD:
                    _SINK["progress"](e.text_position)
            i += 1
        return 0
    except Exception as err:  # never let an exception cross into C
        _SINK["error"] = err
        return 1


def espeak_version() -> str:
    """Version string of the loaded eSpeak NG library, e.g. ``'1.52.0'``.

    Raises
    ------
    ImportError
        If no eSpeak NG library is installed (the message says how to get one).
    """
    with _LOCK:
        return _engine()["lib"].espeak_Info(None).decode()


def list_voices() -> list[tuple[str, list[str]]]:
    """Voices of the installed eSpeak NG: ``[(identifier, [language, ...]), ...]``.

    Any identifier or language listed here is a valid ``voice`` for
    :func:`synthesize_speech`, optionally followed by a variant such as
    ``"+f3"`` (a female voice) or ``"+m3"``.

    Raises
    ------
    ImportError
        If no eSpeak NG library is installed.
    """
    with _LOCK:
        lib = _engine()["lib"]
        table = lib.espeak_ListVoices(None)
        voices = []
        i = 0
        while table[i]:
            v = table[i].contents
            voices.append((v.identifier.decode(errors="replace"), _languages(v.languages)))
            i += 1
        return voices


def _languages(pointer: int | None) -> list[str]:
    langs = []
    if not pointer:
        return langs
    offset = 0
    while ctypes.c_ubyte.from_address(pointer + offset).value != 0:   # priority byte; 0 ends the list
        name = ctypes.string_at(pointer + offset + 1)
        langs.append(name.decode(errors="replace"))
        offset += len(name) + 2
    return langs


def _set_voice(lib, voice: str) -> None:
    if lib.espeak_SetVoiceByName(voice.encode()) == EE_OK:
        return
    # Not a voice file name: look the language up ("en-gb" -> "gmw/en"), keep a "+variant".
    language, _, variant = voice.partition("+")
    table = lib.espeak_ListVoices(None)
    i = 0
    while table[i]:
        v = table[i].contents
        if language.lower() in (name.lower() for name in _languages(v.languages)):
            name = v.identifier + (b"+" + variant.encode() if variant else b"")
            if lib.espeak_SetVoiceByName(name) == EE_OK:
                return
        i += 1
    raise ValueError(f"unknown eSpeak voice {voice!r}; mmalign.features.speech.list_voices() lists the "
                     "installed voices (a language such as 'en-us', optionally with a variant: 'en-gb+f3')")


# --------------------------------------------------------------------------- words

_TOKEN = re.compile(r"\S+")
_CORE = re.compile(r"\W*(.*?)\W*$", re.S)


def tokenize_words(text: str) -> list[tuple[str, int, int]]:
    """Whitespace-separated words of ``text`` without their edge punctuation.

    Parameters
    ----------
    text : str

    Returns
    -------
    words : list of (word, char_start, char_end)
        ``text[char_start:char_end] == word``; tokens made only of
        punctuation are left out.

    Examples
    --------
    >>> tokenize_words('"Hello, world!" -- 42')
    [('Hello', 1, 6), ('world', 8, 13), ('42', 19, 21)]
    """
    return [(text[c0:c1], c0, c1) for _, _, c0, c1 in _tokens(text) if c1 > c0]


def _tokens(text: str) -> list[tuple[int, int, int, int]]:
    """``(raw_start, raw_end, word_start, word_end)`` of every whitespace-separated token."""
    out = []
    for m in _TOKEN.finditer(text):
        core = _CORE.match(m.group())
        out.append((m.start(), m.end(), m.start() + core.start(1), m.start() + core.end(1)))
    return out


def _silent_edges(audio: np.ndarray, sr: int, start: int, end: int, floor: float) -> tuple[int, int]:
    """Trim runs of 5 ms blocks whose peak is below ``floor`` off both ends of ``audio[start:end]``."""
    block = max(1, sr // 200)
    segment = np.abs(audio[start:end])
    if len(segment) == 0:
        return start, end
    n_blocks = -(-len(segment) // block)
    padded = np.zeros(n_blocks * block, dtype=segment.dtype)
    padded[: len(segment)] = segment
    loud = np.flatnonzero(padded.reshape(n_blocks, block).max(axis=1) >= floor)
    if len(loud) == 0:
        return start, start   # all silent: an empty word at its start
    return start + loud[0] * block, min(end, start + (loud[-1] + 1) * block)


def _words_from_events(text: str, events: list, audio: np.ndarray, sr: int) -> list[Word]:
    """Give eSpeak's WORD events to the text tokens; time every word token.

    eSpeak sometimes joins an unstressed word to its neighbour ("on the",
    "a") and reports no event for it, and sometimes reports an event at a
    character inside the previous word ("so far").  An event in excess on a
    token moves on to the event-less word tokens right after it; word tokens
    still without an event share the span of the spoken token before them (or
    after them, at the start), split in proportion to their lengths.
    """
    tokens = _tokens(text)
    if not tokens:
        return []
    raw_starts = np.array([t[0] for t in tokens])
    own: dict[int, list[int]] = {}                  # token -> samples of its WORD events
    for kind, position, _, sample in events:
        if kind != EVENT_WORD:
            continue
        char = position - 1                         # eSpeak counts characters from 1
        k = max(int(np.searchsorted(raw_starts, char, side="right")) - 1, 0)
        if char >= tokens[k][1] and k + 1 < len(tokens):
            k += 1                                  # in the gap before the next token
        own.setdefault(k, []).append(sample)
    if not own:
        return []
    is_word = [c1 > c0 for _, _, c0, c1 in tokens]
    # Excess events move on to the silent word tokens that follow ("so far").
    for k in sorted(own):
        gap = []
        for m in range(k + 1, len(tokens)):
            if m in own:
                break
            if is_word[m]:
                gap.append(m)
        extra = sorted(own[k])[1:]
        for m, sample in zip(gap, extra[len(extra) - min(len(extra), len(gap)):]):
            own[m] = [sample]
            own[k].remove(sample)
    # Groups: a spoken token and the silent word tokens after it (before it, at the start).
    spoken = sorted(own)
    group_of = {k: [k] for k in spoken}
    for m in range(len(tokens)):
        if m in own or not is_word[m]:
            continue
        before = [k for k in spoken if k < m]
        group_of[before[-1] if before else spoken[0]].append(m)
    order = sorted(spoken, key=lambda k: (min(own[k]), k))
    ends = sorted(sample for kind, _, _, sample in events if kind == EVENT_END)
    n_samples = len(audio)
    floor = 10 ** (-40 / 20) * max(float(np.abs(audio).max()) if n_samples else 0.0, 1e-9)  # -40 dB
    words = []
    for n, k in enumerate(order):
        begin, last = min(own[k]), max(own[k])
        stop = n_samples
        if n + 1 < len(order):
            stop = min(stop, max(min(own[order[n + 1]]), begin))
        later_ends = [e for e in ends if e > last]
        if later_ends:
            stop = min(stop, later_ends[0])
        lo, hi = _silent_edges(audio, sr, begin, stop, floor)
        members = sorted(group_of[k])
        spans = []
        for m in members:
            raw0, raw1, c0, c1 = tokens[m]
            if c1 == c0:                            # a spoken punctuation token ("&", "%")
                c0, c1 = raw0, raw1
            spans.append((c0, c1))
        weights = np.array([c1 - c0 + 1 for c0, c1 in spans], dtype=np.float64)
        edges = lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        for (c0, c1), t0, t1 in zip(spans, edges[:-1], edges[1:]):
            words.append(Word(text[c0:c1], float(t0) / sr, float(t1) / sr, c0, c1))
    words.sort(key=lambda w: w.char_start)
    return words


# --------------------------------------------------------------------------- synthesis


def synthesize_speech(
    text: str,
    *,
    voice: str = "en",
    rate_wpm: int = 175,
    pitch: int | None = None,
    sr: int = 22050,
    progress: Callable[[int], None] | None = None,
) -> Speech:
    """Render ``text`` as speech with eSpeak NG; return the audio and word timings.

    Parameters
    ----------
    text : str
        Text to speak (UTF-8 capable; numbers and abbreviations are expanded
        by eSpeak, and their several spoken words count as one text word).
    voice : str
        eSpeak voice: a language (``"en"``, ``"en-us"``, ``"en-gb"``,
        ``"de"``, ...) or a voice identifier (``"gmw/en-GB-x-rp"``),
        optionally with a variant (``"en-us+f3"``, ``"en+m3"``).  See
        :func:`list_voices`.
    rate_wpm : int in [80, 450]
        Speaking rate in words per minute (eSpeak's default is 175).
    pitch : int in [0, 100] or None
        Base pitch; ``None`` keeps eSpeak's default (50).
    sr : int > 0
        Sampling rate of the returned audio in Hz; eSpeak renders at 22050 Hz
        and other rates are resampled (``librosa.resample``).
    progress : callable or None
        Called with the (1-based) character position of each word as it is
        rendered, e.g. to drive a progress bar.

    Returns
    -------
    speech : Speech
        ``(audio, sr, words)``: ``audio`` float32 ``(n_samples,)`` in
        ``[-1, 1]``; ``sr`` in Hz; ``words`` a list of :class:`Word`
        ``(word, start, end, char_start, char_end)`` in text order, times in
        seconds with ``0 <= start <= end <= n_samples / sr``.

    Raises
    ------
    ImportError
        If no eSpeak NG library is installed; the message names the
        ``mmalign[speech]`` extra.
    ValueError
        Empty text, an unknown voice, or a rate, pitch or ``sr`` out of range.

    Notes
    -----
    Word **starts** are eSpeak's ``espeakEVENT_WORD`` events (sample
    positions in its output).  A word **ends** at the next event (next word,
    end of clause or sentence) or at the end of the audio, after trimming the
    silence (5 ms blocks 40 dB below the peak) off both edges of that span;
    the same trimming moves a start past leading silence.  eSpeak reports no
    event for some unstressed words it joins to a neighbour ("on the"); such
    a word shares the span of the spoken word before it, split in proportion
    to their lengths in characters.  Holds a module lock for the whole call
    (eSpeak is global state).

    Examples
    --------
    Needs the eSpeak NG library (``pip install "mmalign[speech]"``):

    >>> audio, sr, words = synthesize_speech("Hello world.")  # doctest: +SKIP
    >>> [w.word for w in words], sr                           # doctest: +SKIP
    (['Hello', 'world'], 22050)
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty: there is nothing to synthesise")
    if "\x00" in text:
        raise ValueError("text contains a NUL character")
    if isinstance(rate_wpm, bool) or not isinstance(rate_wpm, (int, np.integer)) \
            or not espeakRATE_MINIMUM <= rate_wpm <= espeakRATE_MAXIMUM:
        raise ValueError(f"rate_wpm must be an integer in [{espeakRATE_MINIMUM}, {espeakRATE_MAXIMUM}] "
                         f"words per minute, got {rate_wpm!r}")
    if pitch is not None and (isinstance(pitch, bool) or not isinstance(pitch, (int, np.integer))
                              or not 0 <= pitch <= 100):
        raise ValueError(f"pitch must be an integer in [0, 100] or None, got {pitch!r}")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}")
    if not isinstance(voice, str) or not voice:
        raise ValueError(f"voice must be a non-empty str, got {voice!r}")

    with _LOCK:
        engine = _engine()
        lib, native_sr = engine["lib"], engine["sample_rate"]
        _set_voice(lib, voice)
        lib.espeak_SetParameter(espeakRATE, int(rate_wpm), 0)
        lib.espeak_SetParameter(espeakPITCH, 50 if pitch is None else int(pitch), 0)
        lib.espeak_SetParameter(espeakVOLUME, 100, 0)
        _SINK.clear()
        _SINK.update(chunks=[], events=[], progress=progress, error=None)
        try:
            data = text.encode("utf-8") + b"\x00"
            status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, espeakCHARS_UTF8, None, None)
            if status != EE_OK:
                raise RuntimeError(f"espeak_Synth failed with status {status}")
            lib.espeak_Synchronize()
            if _SINK["error"] is not None:
                raise _SINK["error"]
            chunks, events = _SINK["chunks"], _SINK["events"]
        finally:
            _SINK.clear()

    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    audio = pcm.astype(np.float32) / 32768.0
    words = _words_from_events(text, events, audio, native_sr)
    if sr != native_sr and len(audio):
        import librosa

        audio = librosa.resample(audio, orig_sr=native_sr, target_sr=int(sr)).astype(np.float32)
    return Speech(np.ascontiguousarray(audio), int(sr), words)
