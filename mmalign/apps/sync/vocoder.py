"""Re-timing audio along a monotone time map with a time-varying phase vocoder.

One engine serves two jobs:

- :func:`time_stretch_piecewise` stretches a recording with a known
  piecewise-linear warp (ground truth for synchronisation tests);
- :func:`warp_audio_preview` / :func:`write_preview` re-time recording B
  onto recording A's timeline along an :class:`~mmalign.Alignment`, so that
  the two can be heard side by side (A left, warped B right).

How it works: output frame ``k`` (centred on output sample ``k * hop``) reads
the source at ``p_k = source_time(k * hop)``.  Its magnitude is interpolated
linearly between the two source STFT frames around ``p_k``; its phase is the
previous output phase plus the phase advance measured between those two
source frames (the phase vocoder of Flanagan & Golden, as in
``librosa.phase_vocoder``, but with a rate that changes from frame to
frame).  Frames are overlap-added with a Hann window at 75 % overlap.  Pitch
is kept; the time map is followed to within a frame (``n_fft / 4`` samples,
23 ms at 22050 Hz).  Transients are smeared a little, as with any phase
vocoder.  Everything runs chunk by chunk, reading the source sequentially, so
memory does not grow with the length of the recordings.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Iterable, Iterator

import numpy as np

from ...features.audio import _check_signal
from ._stream import SequentialReader, array_blocks

__all__ = ["time_stretch_piecewise", "warp_audio_preview", "write_preview", "alignment_time_map"]

_CHUNK_FRAMES = 1024   # output frames synthesised at once


def time_stretch_piecewise(audio: np.ndarray, sr: int, warp_points) -> tuple[np.ndarray, np.ndarray]:
    """Stretch a recording along a known piecewise-linear time map.

    Parameters
    ----------
    audio : np.ndarray, shape=(n_samples,), floating
        Mono input.
    sr : int > 0
        Sampling rate in Hz.
    warp_points : array-like, shape=(P, 2)
        Knots ``(input_time, output_time)`` in seconds, both strictly
        increasing.  ``(0, 0)`` is prepended if missing.  If the last input
        time falls short of the input's duration, one knot is appended at the
        end, continuing the last segment's rate.  Between knots the map is
        linear: a segment of input length ``di`` played in ``do`` seconds is
        slowed down by ``do / di``.

    Returns
    -------
    stretched : np.ndarray, shape=(round(knots[-1, 1] * sr),), dtype=float32
        The re-timed recording, same pitch.
    knots : np.ndarray, shape=(P', 2), float64
        The complete time map (seconds): input instant ``t`` sounds at output
        instant ``np.interp(t, knots[:, 0], knots[:, 1])``.

    Raises
    ------
    ValueError
        Bad audio, rate, or knots that are not strictly increasing.

    Examples
    --------
    >>> sr = 8000
    >>> y = np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr).astype(np.float32)
    >>> # the first second slowed down 1.5x, the next one sped up 2x
    >>> z, knots = time_stretch_piecewise(y, sr, [(1.0, 1.5), (2.0, 2.0)])
    >>> len(z) / sr, knots.tolist()
    (2.0, [[0.0, 0.0], [1.0, 1.5], [2.0, 2.0]])
    """
    audio = _check_audio(audio, "audio")
    _check_sr(sr)
    knots = _complete_knots(warp_points, len(audio) / sr)
    n_out = int(round(knots[-1, 1] * sr))

    def source_time(t_out: np.ndarray) -> np.ndarray:
        return _interp_linear_ends(t_out, knots[:, 1], knots[:, 0])

    out = np.concatenate(list(_vary_rate(array_blocks(audio), sr, source_time, n_out)))
    return out, knots


def alignment_time_map(alignment, *, smooth_seconds: float = 0.1) -> Callable[[np.ndarray], np.ndarray]:
    """The time in B (seconds) of each instant of A (seconds) along an alignment.

    Reads ``alignment.mapping("x")`` (for every frame of A, the mean frame of
    B it is matched to), smooths it with a moving average of
    ``smooth_seconds`` (which keeps it non-decreasing) and interpolates
    linearly; beyond the ends it continues at slope 1.

    Parameters
    ----------
    alignment : mmalign.Alignment
        Side x is A, side y is B; ``frame_rate`` must be set.
    smooth_seconds : float >= 0
        Width of the moving average.

    Returns
    -------
    time_b : callable
        ``time_b(t_a)`` for an array of seconds in A, same shape.

    Examples
    --------
    >>> from mmalign import Alignment
    >>> al = Alignment([[0, 0], [1, 2], [2, 4]], frame_rate=10.0)
    >>> alignment_time_map(al, smooth_seconds=0)(np.array([0.1, 0.15, 1.0]))
    array([0.2, 0.3, 1.2])
    """
    rate_a, rate_b = _rates(alignment)
    mapping = alignment.mapping("x") / rate_b
    width = int(round(smooth_seconds * rate_a))
    if width > 1 and len(mapping) > width:
        padded = np.concatenate([np.full(width // 2, mapping[0]), mapping,
                                 np.full(width - 1 - width // 2, mapping[-1])])
        mapping = np.convolve(padded, np.ones(width) / width, mode="valid")
    frames_a = np.arange(len(mapping)) / rate_a
    first, last = frames_a[0], frames_a[-1]

    def time_b(t_a: np.ndarray) -> np.ndarray:
        t_a = np.asarray(t_a, dtype=np.float64)
        inside = np.interp(t_a, frames_a, mapping)
        return np.where(t_a < first, mapping[0] + (t_a - first),
                        np.where(t_a > last, mapping[-1] + (t_a - last), inside))

    return time_b


def warp_audio_preview(audio_b: np.ndarray, alignment, sr: int, *, length: int | None = None,
                       smooth_seconds: float = 0.1) -> np.ndarray:
    """Recording B re-timed onto A's timeline along ``alignment``.

    Parameters
    ----------
    audio_b : np.ndarray, shape=(n_samples_b,), floating
        Mono recording B (side y of the alignment).
    alignment : mmalign.Alignment
        A (side x) to B (side y), with ``frame_rate`` set, as returned by
        :func:`mmalign.apps.sync.synchronize`.
    sr : int > 0
        Sampling rate of ``audio_b`` (and of the output), Hz.
    length : int or None
        Output length in samples; default: A's length implied by the
        alignment, ``round(n_x / rate_x * sr)``.
    smooth_seconds : float >= 0
        Smoothing of the time map (see :func:`alignment_time_map`).

    Returns
    -------
    warped : np.ndarray, shape=(length,), dtype=float32
        B as it would sound played in A's timing: sample ``t`` of the output
        is B around time ``time_b(t / sr)``.

    Examples
    --------
    >>> from mmalign import Alignment
    >>> sr = 8000
    >>> b = np.sin(2 * np.pi * 300 * np.arange(sr) / sr).astype(np.float32)
    >>> al = Alignment([[i, i // 2] for i in range(100)], frame_rate=50.0)  # A is B slowed 2x
    >>> warp_audio_preview(b, al, sr).shape
    (16000,)
    """
    audio_b = _check_audio(audio_b, "audio_b")
    _check_sr(sr)
    return np.concatenate(list(_preview_chunks(array_blocks(audio_b), alignment, sr, length=length,
                                               smooth_seconds=smooth_seconds)))


def write_preview(path: str | os.PathLike, audio_a, audio_b, alignment, sr: int, *,
                  progress: bool = False, smooth_seconds: float = 0.1) -> str:
    """Write a stereo WAV: A on the left, B re-timed onto A on the right.

    Listening to it tells at once whether the synchronisation holds: where it
    does, both channels play the same thing at the same time.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (16-bit PCM; the format follows the extension).
    audio_a, audio_b : np.ndarray, shape=(n_samples,), or iterables of mono blocks
        The two recordings at ``sr`` Hz.  Iterables of blocks (as
        :func:`mmalign.apps.sync._stream.file_blocks` yields) are read once,
        sequentially, so hour-long files never sit in memory.
    alignment : mmalign.Alignment
        A (x) to B (y), ``frame_rate`` set.
    sr : int > 0
        Sampling rate in Hz.
    progress : bool
        Show a tqdm progress bar.
    smooth_seconds : float >= 0
        Smoothing of the time map (see :func:`alignment_time_map`).

    Returns
    -------
    path : str
        The file written.  Its length is A's length implied by the alignment.

    Examples
    --------
    >>> import tempfile, soundfile as sf
    >>> from mmalign import Alignment
    >>> sr = 8000
    >>> a = np.zeros(sr, np.float32)
    >>> al = Alignment([[i, i] for i in range(50)], frame_rate=50.0)
    >>> out = write_preview(tempfile.mkdtemp() + "/p.wav", a, a, al, sr)
    >>> sf.info(out).channels
    2
    """
    import soundfile as sf

    _check_sr(sr)
    blocks_a = array_blocks(_check_audio(audio_a, "audio_a")) if isinstance(audio_a, np.ndarray) else audio_a
    blocks_b = array_blocks(_check_audio(audio_b, "audio_b")) if isinstance(audio_b, np.ndarray) else audio_b
    rate_a, _ = _rates(alignment)
    length = int(round(alignment.n_x / rate_a * sr))
    reader_a = SequentialReader(blocks_a)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=length / sr, desc="preview", unit="s", leave=False,
                   bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]")
    path = os.fspath(path)
    written = 0
    with sf.SoundFile(path, "w", samplerate=sr, channels=2, subtype="PCM_16") as f:
        for right in _preview_chunks(blocks_b, alignment, sr, length=length, smooth_seconds=smooth_seconds):
            left = reader_a.get(written, written + len(right))
            f.write(np.clip(np.stack([left, right], axis=1), -1.0, 1.0))
            written += len(right)
            if bar is not None:
                bar.update(len(right) / sr)
    if bar is not None:
        bar.close()
    return path


# --------------------------------------------------------------------------- engine


def _preview_chunks(blocks_b: Iterable[np.ndarray], alignment, sr: int, *, length: int | None,
                    smooth_seconds: float) -> Iterator[np.ndarray]:
    rate_a, _ = _rates(alignment)
    if length is None:
        length = int(round(alignment.n_x / rate_a * sr))
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length <= 0:
        raise ValueError(f"length must be a positive integer (samples), got {length!r}")
    if smooth_seconds < 0:
        raise ValueError(f"smooth_seconds must be >= 0, got {smooth_seconds!r}")
    time_b = alignment_time_map(alignment, smooth_seconds=smooth_seconds)
    return _vary_rate(blocks_b, sr, time_b, int(length))


def _vary_rate(blocks: Iterable[np.ndarray], sr: int, source_time: Callable[[np.ndarray], np.ndarray],
               n_out: int) -> Iterator[np.ndarray]:
    """Yield ``n_out`` output samples; output time ``t`` plays the source at ``source_time(t)``.

    ``source_time`` (seconds to seconds) must be non-decreasing.
    """
    n_fft = int(2 ** round(math.log2(0.0929 * sr)))   # about 93 ms (2048 at 22050 Hz)
    n_fft = max(n_fft, 64)
    hop = n_fft // 4
    half = n_fft // 2
    window = np.hanning(n_fft + 1)[:-1].astype(np.float64)    # periodic Hann
    ola_gain = float(np.sum(window ** 2) / hop)                 # 1.5 for Hann at hop n_fft / 4
    omega = 2 * np.pi * hop * np.arange(half + 1) / n_fft        # expected phase advance per hop
    reader = SequentialReader(blocks)

    # Output frames k = k0 .. k_last, centred on samples k * hop, cover [0, n_out).
    k0 = -(half // hop)
    k_last = (n_out - 1 + half) // hop
    phase = None
    tail = np.zeros(n_fft - hop, np.float64)   # overlap carried into the next chunk
    emitted = 0                                 # output samples yielded so far
    origin = k0 * hop - half                    # output sample of tail[0] / chunk start
    for c0 in range(k0, k_last + 1, _CHUNK_FRAMES):
        ks = np.arange(c0, min(c0 + _CHUNK_FRAMES, k_last + 1))
        pos = source_time(ks * hop / sr) * sr / hop      # source frame, fractional (zeros before 0)
        j = np.floor(pos + 1e-9).astype(np.int64)        # 4.9999999 is frame 5
        alpha = np.clip(pos - j, 0.0, 1.0)
        spec = _source_frames(reader, j, hop, n_fft, window)          # frames j .. j+1 as needed
        S0, S1 = spec(j), spec(j + 1)
        mag = (1 - alpha)[:, None] * np.abs(S0) + alpha[:, None] * np.abs(S1)
        dphi = np.angle(S1) - np.angle(S0) - omega
        dphi = dphi - 2 * np.pi * np.round(dphi / (2 * np.pi)) + omega
        if phase is None:   # start in phase with the source at the first position
            phase = np.angle(S0[0]) + alpha[0] * dphi[0]
        phases = phase + np.concatenate([np.zeros((1, half + 1)), np.cumsum(dphi[:-1], axis=0)])
        phase = phases[-1] + dphi[-1]
        frames = np.fft.irfft(mag * np.exp(1j * phases), n=n_fft, axis=1) * window
        # overlap-add this chunk's frames after the previous chunk's tail
        span = np.zeros((len(ks) - 1) * hop + n_fft)
        span[:len(tail)] += tail
        for i in range(len(ks)):
            span[i * hop:i * hop + n_fft] += frames[i]
        done = len(ks) * hop                   # samples no later frame touches
        ready, tail = span[:done] / ola_gain, span[done:]
        chunk_start = origin
        origin += done
        lo = max(0, emitted - chunk_start)
        hi = min(done, n_out - chunk_start)
        if hi > lo:
            piece = ready[lo:hi].astype(np.float32)
            emitted += len(piece)
            yield piece


def _source_frames(reader: SequentialReader, j: np.ndarray, hop: int, n_fft: int, window: np.ndarray):
    """STFT frames of the source for the (sorted) frame indices ``j`` and ``j + 1``."""
    needed = np.unique(np.concatenate([j, j + 1]))
    # contiguous runs of needed frames are read (and transformed) together
    breaks = np.flatnonzero(np.diff(needed) > 8) + 1
    table = {}
    half = n_fft // 2
    for run in np.split(needed, breaks):
        first, last = int(run[0]), int(run[-1])
        seg = reader.get(first * hop - half, last * hop + half).astype(np.float64)
        frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop] * window
        spec = np.fft.rfft(frames, axis=1)
        for idx in run:
            table[int(idx)] = spec[int(idx) - first]
    index = {k: i for i, k in enumerate(table)}
    stacked = np.stack(list(table.values()))

    def lookup(frames_j: np.ndarray) -> np.ndarray:
        return stacked[[index[int(v)] for v in frames_j]]

    return lookup


def _interp_linear_ends(t: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp`` that continues the first and last segments' slopes beyond the ends."""
    t = np.asarray(t, dtype=np.float64)
    out = np.interp(t, xp, fp)
    first = (fp[1] - fp[0]) / (xp[1] - xp[0])
    last = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    out = np.where(t < xp[0], fp[0] + first * (t - xp[0]), out)
    return np.where(t > xp[-1], fp[-1] + last * (t - xp[-1]), out)


# --------------------------------------------------------------------------- checks


def _rates(alignment) -> tuple[float, float]:
    rate = getattr(alignment, "frame_rate", None)
    if rate is None:
        raise ValueError("alignment.frame_rate is not set; synchronize() sets it, or pass frame_rate= "
                         "to Alignment")
    return rate if isinstance(rate, tuple) else (float(rate), float(rate))


def _check_audio(y, name: str) -> np.ndarray:
    return _check_signal(y, name).astype(np.float32, copy=False)


def _check_sr(sr) -> None:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}")


def _complete_knots(warp_points, duration: float) -> np.ndarray:
    try:
        knots = np.asarray(warp_points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"warp_points must be an array of (input_time, output_time) pairs, "
                         f"got {warp_points!r}") from None
    if knots.ndim != 2 or knots.shape[1] != 2 or len(knots) == 0:
        raise ValueError(f"warp_points must have shape (P, 2) with P >= 1, got {knots.shape}")
    if not np.all(np.isfinite(knots)) or np.any(knots < 0):
        raise ValueError("warp_points must be finite, non-negative seconds")
    if knots[0, 0] > 0 or knots[0, 1] > 0:
        knots = np.vstack([[0.0, 0.0], knots])
    if knots[0, 0] != 0 or knots[0, 1] != 0:
        raise ValueError("warp_points must start at (0, 0) (or after it)")
    if np.any(np.diff(knots[:, 0]) <= 0) or np.any(np.diff(knots[:, 1]) <= 0):
        raise ValueError("warp_points must be strictly increasing in both input and output time")
    if knots[-1, 0] > duration + 1e-9:
        raise ValueError(f"warp_points go to input time {knots[-1, 0]:.3f} s, beyond the audio's "
                         f"{duration:.3f} s")
    if knots[-1, 0] < duration - 1e-9:
        slope = (knots[-1, 1] - knots[-2, 1]) / (knots[-1, 0] - knots[-2, 0]) if len(knots) > 1 else 1.0
        knots = np.vstack([knots, [duration, knots[-1, 1] + slope * (duration - knots[-1, 0])]])
    return knots
