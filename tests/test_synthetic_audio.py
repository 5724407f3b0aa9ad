import numpy as np
import pytest

from mmalign.datasets import PerformancePair, synthesize_performances

SR = 22050


@pytest.fixture(scope="module")
def pair():
    return synthesize_performances(16, seed=4)


def test_fields_and_types(pair):
    assert isinstance(pair, PerformancePair)
    assert pair.sr == SR
    for audio in (pair.audio_a, pair.audio_b):
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
        assert np.max(np.abs(audio)) > 0.5
    assert len(pair.score_times) == len(pair.onsets_a) == len(pair.onsets_b) == 16
    for onsets in (pair.score_times, pair.onsets_a, pair.onsets_b):
        assert np.all(np.diff(onsets) > 0)
    assert pair.onsets_a[-1] < pair.duration_a and pair.onsets_b[-1] < pair.duration_b


def test_default_length_is_about_30_seconds():
    pair = synthesize_performances(seed=0)
    assert 20 < pair.duration_a < 40 and 20 < pair.duration_b < 40


def test_deterministic_for_a_seed(pair):
    again = synthesize_performances(16, seed=4)
    np.testing.assert_array_equal(pair.audio_a, again.audio_a)
    np.testing.assert_array_equal(pair.audio_b, again.audio_b)
    np.testing.assert_array_equal(pair.onsets_b, again.onsets_b)
    other = synthesize_performances(16, seed=5)
    assert not np.array_equal(pair.onsets_a, other.onsets_a)


def test_true_time_maps_onsets_to_onsets(pair):
    np.testing.assert_allclose(pair.true_time_b(pair.onsets_a), pair.onsets_b, atol=1e-6)
    np.testing.assert_allclose(pair.true_time_a(pair.onsets_b), pair.onsets_a, atol=1e-6)
    t = np.linspace(pair.onsets_a[0], pair.onsets_a[-1], 50)
    np.testing.assert_allclose(pair.true_time_a(pair.true_time_b(t)), t, atol=1e-6)


def test_warp_is_nonlinear_and_within_tempo_range():
    low, high = 0.8, 1.25
    pair = synthesize_performances(32, seed=1, tempo_range=(low, high))
    # Far from any straight line: the two tempo curves vary over time.
    fit = np.polyval(np.polyfit(pair.onsets_a, pair.onsets_b, 1), pair.onsets_a)
    assert np.max(np.abs(fit - pair.onsets_b)) > 0.1
    # Performance seconds per score second stay within 1/high .. 1/low.
    for grid in (pair.perf_grid_a, pair.perf_grid_b):
        slope = np.diff(grid) / np.diff(pair.score_grid)
        assert slope.min() >= 1 / high - 1e-9 and slope.max() <= 1 / low + 1e-9
        assert slope.max() - slope.min() > 0.05


def test_the_two_renditions_differ(pair):
    assert len(pair.audio_a) != len(pair.audio_b) or not np.allclose(pair.audio_a, pair.audio_b)
    assert not np.allclose(pair.onsets_a - pair.onsets_a[0], pair.onsets_b - pair.onsets_b[0], atol=0.05)


def test_onsets_are_audible(pair):
    win = int(0.04 * SR)
    louder = 0
    for onset in pair.onsets_a[1:]:
        i = int(round(onset * SR))
        before = np.sqrt(np.mean(pair.audio_a[i - win:i] ** 2))
        after = np.sqrt(np.mean(pair.audio_a[i + win // 4:i + win] ** 2))
        louder += after > 1.2 * before
    assert louder >= 0.9 * (len(pair.onsets_a) - 1)


def test_consecutive_melody_notes_differ(pair):
    melody = [notes[0] for notes in pair.pitches]
    assert all(a != b for a, b in zip(melody, melody[1:]))


def test_reference_frames(pair):
    hop = 512
    rate = SR / hop
    ref = pair.reference_frames(hop)
    assert ref.ndim == 2 and ref.shape[1] == 2 and ref.dtype == np.float64
    np.testing.assert_array_equal(ref[:, 0], np.round(ref[:, 0]))
    assert np.all(np.diff(ref[:, 0]) == 1) and np.all(np.diff(ref[:, 1]) > 0)
    # Limited to where both play: first onset to last note-off.
    assert ref[0, 0] / rate >= pair.onsets_a[0] and ref[0, 0] / rate < pair.onsets_a[0] + 1 / rate
    assert ref[0, 1] / rate >= pair.onsets_b[0] - 1e-6
    assert ref[-1, 0] / rate <= pair.duration_a and ref[-1, 1] / rate <= pair.duration_b
    # Frame t of A maps to the true time of B, in B's frames.
    k = len(ref) // 2
    assert ref[k, 1] == pytest.approx(pair.true_time_b(ref[k, 0] / rate) * rate)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_notes=0), "n_notes"),
        (dict(sr=0), "sr"),
        (dict(tempo_range=(1.2, 0.8)), "tempo_range"),
        (dict(tempo_range=(0.0, 1.0)), "tempo_range"),
        (dict(chord_probability=1.5), "chord_probability"),
        (dict(lead_in=(-1, 0)), "lead_in"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    kwargs.setdefault("n_notes", 4)
    with pytest.raises(ValueError, match=name):
        synthesize_performances(**kwargs)


def test_reference_frames_rejects_bad_hop(pair):
    with pytest.raises(ValueError, match="hop_length"):
        pair.reference_frames(0)
