"""Audio read block by block: from an array or a file, resampled on the fly.

Every reader here yields mono ``float32`` blocks, so that a recording of an
hour never has to sit in memory at once.  :class:`SequentialReader` turns such
a stream into random access for *non-decreasing* positions, which is all a
monotone time map needs.
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from ...features.audio import AudioFileInfo, audio_file_info

__all__ = ["AudioInfo", "audio_info", "array_blocks", "file_blocks", "SequentialReader"]

BLOCK = 1 << 16  # samples per block read from a file


# The header reader is shared with the rest of the library (one readable-audio check for every command).
AudioInfo = AudioFileInfo
audio_info = audio_file_info


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
