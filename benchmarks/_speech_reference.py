"""Real recordings of Debian's ``pocketsphinx-testdata`` and their reference word times.

The recordings (``/usr/share/pocketsphinx/test/data``, see
``datasets/pocketsphinx_testdata.md``) are short English utterances, 16 kHz
16-bit mono.  The reference word times come from the pocketsphinx acoustic
model (``pocketsphinx-en-us``) forced to the transcript: a JSGF grammar that
holds exactly the transcript's words, decoded by ``pocketsphinx_batch``.

``pocketsphinx_batch`` takes each file as one utterance, keeps every frame
and normalises with the cepstral mean of the whole file (``-cmn batch``);
``pocketsphinx_continuous`` estimates the mean live and by default drops the
frames its voice-activity detector calls silence.  Silence between and around
words is free (``-silprob 1.0``): with the default 0.005 the first word
absorbed 0.06-0.18 s of leading background noise in three of the six files.

Times are on pocketsphinx's 10 ms frame grid: a word starts at its first
frame's index x 10 ms and ends where the next segment (word, silence or
filler) starts, or at the last frame.

Nothing here is tuned on, or reads, the files reserved for an independent
check (``librivox/`` and ``goforward.raw``): :data:`RESERVED`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(os.environ.get("MMALIGN_POCKETSPHINX_DATA", "/usr/share/pocketsphinx/test/data"))
MODEL_DIR = Path(os.environ.get("MMALIGN_POCKETSPHINX_MODEL", "/usr/share/pocketsphinx/model/en-us"))
SR = 16000
FRAME_S = 0.01                  # pocketsphinx's frame rate: 100 frames per second
# never read, listed so that code can refuse them
RESERVED = ("librivox", "goforward.raw")
INSTALL = "apt-get install -y pocketsphinx pocketsphinx-en-us pocketsphinx-testdata"
# pocketsphinx_batch options besides the input, grammar and model (see the module docstring)
DECODER_OPTIONS = ("-samprate", "16000", "-cmn", "batch", "-silprob", "1.0")
# words pocketsphinx reports that are not words of the transcript
_NON_WORDS = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+|<.*>)$")
_VARIANT = re.compile(r"\(\d+\)$")      # "and(2)": the second pronunciation of "and"


@dataclass
class Utterance:
    """One recording of the data set with its transcript."""

    name: str                   # short name used in the tables, e.g. "cards/001"
    path: Path                  # the file in the Debian package
    text: str                   # the transcript as the aligners get it (lower case words)
    transcript_source: str      # where the transcript was read
    notes: list[str] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        return self.text.split()


def missing_tools() -> list[str]:
    """What of the pocketsphinx set-up is missing here (empty when everything is installed)."""
    missing = []
    if shutil.which("pocketsphinx_batch") is None:
        missing.append("pocketsphinx_batch (Debian package pocketsphinx)")
    if not (MODEL_DIR / "en-us").is_dir() or not (MODEL_DIR / "cmudict-en-us.dict").is_file():
        missing.append(f"the en-us acoustic model and dictionary under {MODEL_DIR} (pocketsphinx-en-us)")
    if not (DATA_DIR / "cards" / "cards.transcription").is_file():
        missing.append(f"the test recordings under {DATA_DIR} (pocketsphinx-testdata)")
    return missing


def _check_not_reserved(path: Path) -> None:
    rel = str(path)
    if any(r in rel for r in RESERVED):
        raise ValueError(f"{path} is reserved for an independent check and must not be used")


def _read_transcription(path: Path) -> dict[str, str]:
    """``<s> ten of clubs </s> (001)`` lines -> {"001": "ten of clubs"}."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(.*)\((\S+)\)\s*$", line.strip())
        if not m:
            continue
        words = [w for w in m.group(1).split() if w not in ("<s>", "</s>")]
        out[m.group(2)] = " ".join(words).lower()
    return out


# TIDIGITS file names spell the digit string: 1-9, "z" zero, "o" oh (the package's own
# tidigits.lsn pairs e.g. man.ah.2934za with "two nine three four zero")
_TIDIGITS = {"1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
             "7": "seven", "8": "eight", "9": "nine", "z": "zero", "o": "oh"}


def tidigits_transcript(digits: str) -> str:
    """``"2934z"`` -> ``"two nine three four zero"`` (TIDIGITS naming)."""
    try:
        return " ".join(_TIDIGITS[c] for c in digits.lower())
    except KeyError as err:
        raise ValueError(f"not a TIDIGITS digit string: {digits!r}") from err


def utterances() -> tuple[list[Utterance], list[dict]]:
    """The recordings used, and those left out (``{"file", "reason"}``)."""
    used, left_out = [], []
    cards = _read_transcription(DATA_DIR / "cards" / "cards.transcription")
    for fid in sorted(cards):
        path = DATA_DIR / "cards" / f"{fid}.wav"
        used.append(Utterance(f"cards/{fid}", path, cards[fid], "cards/cards.transcription"))
    # tidigits/dhd.2934z.raw: the only audio in tidigits/ (the other files are MFCC features);
    # its transcript is its name, read the TIDIGITS way
    dhd = DATA_DIR / "tidigits" / "dhd.2934z.raw"
    used.append(Utterance("tidigits/dhd.2934z", dhd, tidigits_transcript("2934z"),
                          "file name (TIDIGITS convention, as tidigits/tidigits.lsn uses it)"))
    for name in ("numbers.raw", "something.raw"):
        left_out.append({"file": str(DATA_DIR / name),
                         "reason": "no transcript in the package (only the audio is shipped)"})
    for u in used:
        _check_not_reserved(u.path)
    return used, left_out


def load_audio(path: Path) -> np.ndarray:
    """16 kHz mono int16 samples of a package file (.wav, or headerless little-endian .raw)."""
    _check_not_reserved(path)
    path = Path(path)
    if path.suffix == ".wav":
        with wave.open(str(path)) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SR, 1, 2):
                raise ValueError(f"{path}: expected 16 kHz 16-bit mono, got {w.getframerate()} Hz, "
                                 f"{w.getnchannels()} channels, {8 * w.getsampwidth()} bit")
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()
    return np.fromfile(path, dtype="<i2")


def write_wav(path: Path, samples: np.ndarray) -> None:
    """Write int16 mono samples as a 16 kHz WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def grammar(words: list[str]) -> str:
    """A JSGF grammar that accepts exactly ``words``."""
    return f"#JSGF V1.0;\ngrammar forced;\npublic <s> = {' '.join(words)};\n"


def parse_hypseg(line: str, frame_s: float = FRAME_S) -> list[dict]:
    """Words of one ``pocketsphinx_batch -hypseg`` line, silences and fillers dropped.

    The line reads ``uttid S scale T total A ascr L lscr`` then, per segment,
    ``start_frame ascr lscr word``, and last the end frame of the utterance.
    A word ends where the next segment starts (or at that end frame).
    Pronunciation variants ("and(2)") are reported as the plain word.
    """
    tokens = line.split()
    if len(tokens) < 9 or tokens[1] != "S" or tokens[3] != "T":
        raise ValueError(f"not a hypseg line: {line!r}")
    body = tokens[9:]
    if len(body) % 4 != 1:
        raise ValueError(f"hypseg line has {len(body)} tokens after the header, expected 4 per segment + 1")
    segments = [(int(body[i]), body[i + 3]) for i in range(0, len(body) - 1, 4)]
    last = int(body[-1])
    words = []
    for k, (start, word) in enumerate(segments):
        end = segments[k + 1][0] if k + 1 < len(segments) else last
        if _NON_WORDS.match(word):
            continue
        words.append({"word": _VARIANT.sub("", word).lower(), "start": round(start * frame_s, 3),
                      "end": round(end * frame_s, 3)})
    return words


def pocketsphinx_align(samples: np.ndarray, words: list[str], workdir: Path) -> tuple[list[dict], str]:
    """Force-align ``words`` to 16 kHz int16 ``samples`` with pocketsphinx; (words, hypseg line)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "utt.raw").write_bytes(np.asarray(samples, dtype="<i2").tobytes())
    (workdir / "forced.gram").write_text(grammar(words))
    (workdir / "ctl").write_text("utt\n")
    seg = workdir / "hypseg.txt"
    cmd = ["pocketsphinx_batch", "-adcin", "yes", "-adchdr", "0", "-cepdir", str(workdir),
           "-cepext", ".raw", "-ctl", str(workdir / "ctl"), "-jsgf", str(workdir / "forced.gram"),
           "-hmm", str(MODEL_DIR / "en-us"), "-dict", str(MODEL_DIR / "cmudict-en-us.dict"),
           "-hypseg", str(seg), *DECODER_OPTIONS]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pocketsphinx_batch failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    line = seg.read_text().strip() if seg.exists() else ""
    if not line:
        return [], ""
    return parse_hypseg(line.splitlines()[0]), line.splitlines()[0]


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def reference(utt: Utterance, cache_dir: Path | None = None) -> dict:
    """Reference word times of one utterance: ``{"words": [...], "ok": bool, "reason": str, ...}``.

    Cached as JSON in ``cache_dir`` keyed by the file's hash, the transcript and
    the decoder options (the decoder is fast; the cache only saves a subprocess).
    """
    key = hashlib.sha256(f"{file_hash(utt.path)}|{utt.text}|{' '.join(DECODER_OPTIONS)}".encode()).hexdigest()[:16]
    cached = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        return json.loads(cached.read_text())
    samples = load_audio(utt.path)
    with tempfile.TemporaryDirectory(prefix="psref-") as tmp:
        words, line = pocketsphinx_align(samples, utt.words, Path(tmp))
    got = [w["word"] for w in words]
    ok = got == utt.words
    reason = "" if ok else (f"pocketsphinx's word sequence {' '.join(got) or '(none)'!r} differs from "
                            f"the transcript {utt.text!r}")
    out = {"file": str(utt.path), "name": utt.name, "text": utt.text, "sr": SR,
           "duration": len(samples) / SR, "words": words, "ok": ok, "reason": reason,
           "hypseg": line, "decoder_options": list(DECODER_OPTIONS)}
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(out, indent=1) + "\n")
    return out


def export(path: Path = Path("/tmp/speech_ref/reference.json"), cache_dir: Path | None = None) -> list[dict]:
    """Write the references of every usable recording to ``path`` (list of
    ``{"file", "text", "sr", "words": [{"word", "start", "end"}]}``); return them."""
    used, _ = utterances()
    refs = [reference(u, cache_dir) for u in used]
    good = [{"file": r["file"], "name": r["name"], "text": r["text"], "sr": r["sr"],
             "format": "wav" if r["file"].endswith(".wav") else "raw s16le mono (headerless)",
             "duration": r["duration"], "words": r["words"]} for r in refs if r["ok"]]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(good, indent=1) + "\n")
    os.replace(tmp, path)
    return refs


if __name__ == "__main__":      # python -m benchmarks._speech_reference: write /tmp/speech_ref/reference.json
    for r in export():
        print(r["name"], "ok" if r["ok"] else r["reason"],
              " ".join(f"{w['word']}[{w['start']:.2f}-{w['end']:.2f}]" for w in r["words"]))
