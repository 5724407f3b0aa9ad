"""Audio read block by block: from an array or a file, resampled on the fly.

Every reader here yields mono ``float32`` blocks, so that a recording of an
hour never has to sit in memory at once.  :class:`SequentialReader` turns such
a stream into random access for *non-decreasing* positions, which is all a
monotone time map needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

__all__ = ["AudioInfo", "audio_info", "array_blocks", "file_blocks", "SequentialReader"]

BLOCK = 1 << 16  # samples per block read from a file


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`audio_info` learns from a file's header.

    Attributes
    ----------
    path : str
        The file.
    sr : int
        Native sampling rate in Hz.
    n_samples : int
        Samples per channel at the native rate.
    channels : int
        Number of channels (mixed down to mono when read).
    """

    path: str
    sr: int
    n_samples: int
    channels: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sr


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read an audio file's header; errors name the file.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is a directory, or libsndfile cannot decode it, or it holds
        no samples.
    """
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"expected an audio file, got a directory: {path}")
    try:
        info = sf.info(path)
    except Exception as err:  # libsndfile raises several error types
        reason = str(err).splitlines()[-1] if str(err) else type(err).__name__
        raise ValueError(f"could not read audio file {path}: {reason}") from None
    if info.frames <= 0:
        raise ValueError(f"audio file {path} contains no samples")
    return AudioInfo(path=path, sr=int(info.samplerate), n_samples=int(info.frames),
                     channels=int(info.channels))


def array_blocks(y: np.ndarray, block: int = BLOCK) -> Iterator[np.ndarray]:
    """Consecutive slices of a 1-D signal, ``block`` samples each (views)."""
    for start in range(0, len(y), block):
        yield y[start:start + block]


def file_blocks(path: str | os.PathLike, sr: int | None = None, *, block: int = BLOCK) -> Iterator[np.ndarray]:
    """Mono ``float32`` blocks of an audio file, resampled to ``sr`` on the fly.

    Channels are averaged.  Resampling uses soxr's streaming resampler
    (the same filter as ``librosa.resample(res_type="soxr_hq")``), so the
    blocks concatenate to the resampled signal, without seams.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file (anything libsndfile reads).
    sr : int > 0 or None
        Output rate in Hz; ``None`` keeps the file's rate.
    block : int > 0
        Samples per block read from the file.

    Yields
    ------
    y : np.ndarray, shape=(n,), dtype=float32
        The next samples, in ``[-1, 1]``.

    Raises
    ------
    ValueError
        The file cannot be decoded or holds non-finite samples (the message
        names the file).
    """
    import soundfile as sf

    info = audio_info(path)
    resampler = None
    if sr is not None and sr != info.sr:
        import soxr

        resampler = soxr.ResampleStream(info.sr, sr, 1, dtype="float32", quality="HQ")
    try:
        with sf.SoundFile(info.path) as f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                last = len(data) < block
                mono = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
                if not np.all(np.isfinite(mono)):
                    raise ValueError(f"audio file {info.path} contains NaN or infinite samples")
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if len(mono):
                    yield mono
                if last:
                    return
    except (RuntimeError, sf.SoundFileError) as err:
        raise ValueError(f"could not read audio file {info.path}: {err}") from None


class SequentialReader:
    """Random access to a block stream, for positions that never move back.

    ``get(start, stop)`` returns samples ``[start, stop)`` of the stream,
    zero-padded before 0 and after the end.  Samples before the last
    ``start`` asked for are dropped, so memory stays at about the longest
    span asked for plus one block.

    Examples
    --------
    >>> r = SequentialReader(array_blocks(np.arange(10, dtype=np.float32), block=3))
    >>> r.get(-2, 3).tolist()
    [0.0, 0.0, 0.0, 1.0, 2.0]
    >>> r.get(8, 12).tolist()
    [8.0, 9.0, 0.0, 0.0]
    """

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self._blocks = iter(blocks)
        self._buf = np.zeros(0, np.float32)
        self._start = 0          # absolute index of _buf[0]
        self._done = False

    def get(self, start: int, stop: int) -> np.ndarray:
        start, stop = int(start), int(stop)
        if start < self._start and self._start > 0:
            raise ValueError(f"SequentialReader cannot go back: asked for {start}, already at {self._start}")
        self._drop_before(start)
        while not self._done and self._start + len(self._buf) < stop:
            try:
                block = next(self._blocks)
            except StopIteration:
                self._done = True
                break
            self._buf = np.concatenate([self._buf, np.asarray(block, np.float32)])
            self._drop_before(start)  # a long skip forward never piles up
        out = np.zeros(max(stop - start, 0), np.float32)
        lo = max(start, self._start)
        hi = min(stop, self._start + len(self._buf))
        if hi > lo:
            out[lo - start:hi - start] = self._buf[lo - self._start:hi - self._start]
        return out

    def _drop_before(self, start: int) -> None:
        if start > self._start:
            drop = min(start - self._start, len(self._buf))
            self._buf = self._buf[drop:]
            self._start += drop
