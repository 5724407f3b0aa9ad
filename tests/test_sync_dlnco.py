"""The "chroma+dlnco" sync features: chroma next to decaying locally adaptive normalised
chroma onsets (mmalign.apps.sync.features)."""

import numpy as np
import pytest

from mmalign.apps.sync import feature_dim, feature_hop, synchronize, sync_features
from mmalign.apps.sync.features import _pitch_filterbank, estimate_tuning_semitones

SR = 22050


def tone(f0, start, stop, total, *, sr=SR, harmonics=5, attack=0.005):
    """A harmonic tone from ``start`` to ``stop`` seconds in ``total`` seconds of audio."""
    y = np.zeros(int(total * sr), np.float32)
    t = np.arange(int((stop - start) * sr)) / sr
    env = np.minimum(1.0, t / attack) * np.exp(-1.5 * t) * np.minimum(1.0, (t[-1] - t) / 0.05)
    note = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, harmonics + 1)) * env
    i = int(start * sr)
    y[i:i + len(note)] += 0.3 * note.astype(np.float32)
    return y


def test_shape_dtype_and_columns():
    y = tone(440.0, 0.5, 2.5, 3.0)
    F = sync_features(y, SR, features="chroma+dlnco", hop_length=448)
    assert F.shape == (1 + (len(y) - 1) // 448, 24) == (1 + (len(y) - 1) // 448, feature_dim("chroma+dlnco"))
    assert F.dtype == np.float32 and np.isfinite(F).all()
    # chroma half: unit norm everywhere (silence is the flat vector), A strongest while it sounds
    np.testing.assert_allclose(np.linalg.norm(F[:, :12], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(F[:10, :12], 1 / np.sqrt(12), atol=1e-6)
    assert int(np.argmax(F[60:100, :12].mean(axis=0))) == 9
    assert (F[:, 12:] >= 0).all()


def test_known_onsets_are_found_and_decay():
    # A at 0.6 s, then C (an octave and a third above) at 1.8 s
    y = tone(440.0, 0.6, 3.0, 3.5) + tone(523.25, 1.8, 3.0, 3.5)
    hop = feature_hop(SR, 50.0, "chroma+dlnco")
    rate = SR / hop
    F = sync_features(y, SR, features="chroma+dlnco", hop_length=hop)
    D = F[:, 12:]
    a_peak = int(np.argmax(D[:, 9]))
    c_peak = int(np.argmax(D[:, 0]))
    # the 93 ms window sees a note's first samples up to half a window before its start,
    # and the log compression turns them into the rise: up to ~40 ms early, never late
    assert -0.05 <= a_peak / rate - 0.6 <= 1 / rate
    assert -0.05 <= c_peak / rate - 1.8 <= 1 / rate
    # the onset decays within 0.2 s and nothing rises while the notes are held
    assert D[a_peak + int(0.3 * rate), 9] < 0.05 * D[a_peak, 9]
    assert D[int(1.2 * rate):int(1.7 * rate)].max() < 0.1 * D[a_peak, 9]
    # the strongest onset class at each note start is the note's (A = 9, C = 0)
    assert int(np.argmax(D[a_peak])) == 9 and int(np.argmax(D[c_peak])) == 0


@pytest.mark.parametrize("cents", [-35.0, 0.0, 20.0, 42.0])
def test_tuning_is_recovered_and_used(cents):
    f0 = 440.0 * 2 ** (cents / 1200)
    y = tone(f0, 0.2, 2.2, 2.5, attack=0.01)
    assert estimate_tuning_semitones(y, SR) == pytest.approx(cents / 100, abs=0.04)
    # with the estimated tuning, A's band holds the tone's energy (nearest-bin pooling)
    tuned = _pitch_filterbank(SR, 2048, estimate_tuning_semitones(y, SR))
    k = int(round(f0 * 2048 / SR))
    assert tuned[69 - 21, k] == 1.0
    D = sync_features(y, SR, features="chroma+dlnco", hop_length=448)[:, 12:]
    onset = int(np.argmax(D.sum(axis=1)))
    assert -2.5 <= onset - 0.2 * SR / 448 <= 1 and int(np.argmax(D[onset])) == 9


def test_loudness_does_not_matter():
    y = tone(440.0, 0.5, 2.0, 2.5) + tone(330.0, 1.2, 2.0, 2.5)
    loud = sync_features(y, SR, features="chroma+dlnco")
    quiet = sync_features(0.05 * y, SR, features="chroma+dlnco")
    # the compression is absolute, so onsets change a little with the gain; the chroma not at all
    np.testing.assert_allclose(loud[:, :12], quiet[:, :12], atol=1e-4)
    assert abs(int(np.argmax(quiet[:, 12 + 4])) - int(np.argmax(loud[:, 12 + 4]))) <= 1


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        sync_features(np.full(SR, np.nan, np.float32), SR, features="chroma+dlnco")
    with pytest.raises(ValueError, match="1-D"):
        estimate_tuning_semitones(np.zeros((SR, 2)), SR)
    with pytest.raises(ValueError, match="features"):
        sync_features(np.zeros(SR, np.float32), SR, features="dlnco")


def test_silence_gives_flat_chroma_and_no_onsets():
    F = sync_features(np.zeros(SR, np.float32), SR, features="chroma+dlnco")
    np.testing.assert_allclose(F[:, :12], 1 / np.sqrt(12), atol=1e-6)
    assert np.abs(F[:, 12:]).max() == 0.0


def test_synchronize_default_is_dlnco_and_follows_a_tempo_change():
    # the same two notes, B slower: onsets at 0.5 / 1.5 s in A and 0.8 / 2.3 s in B
    a = tone(440.0, 0.5, 1.5, 3.0, attack=0.005) + tone(523.25, 1.5, 2.5, 3.0, attack=0.005)
    b = tone(440.0, 0.8, 2.3, 3.5, attack=0.08) + tone(523.25, 2.3, 3.3, 3.5, attack=0.08)
    al = synchronize(a, b, sr=SR)
    assert al.extras["features"] == "chroma+dlnco"
    t = al.times()
    for ta, tb in ((0.5, 0.8), (1.5, 2.3)):
        mapped = t[np.argmin(np.abs(t[:, 0] - ta)), 1]
        assert abs(mapped - tb) < 0.06
