"""The pieces of forced alignment after the features: the one-step-per-recording-frame DTW and word timing."""

import itertools

import numpy as np
import pytest

from mmalign.apps._speech_dtw import frame_costs, monotone_path
from mmalign.apps._word_timing import (frame_quality, gaps_at_pauses, join_close_words, order_evidence,
                                       rendering_coverage, snap_to_speech, span_mean, time_map)


def brute_force(costs, max_skip):
    """Every non-decreasing x path with steps 0..max_skip from (0, 0) to (n_x - 1, n_y - 1)."""
    n_x, n_y = costs.shape
    best, arg = np.inf, None
    for steps in itertools.product(range(max_skip + 1), repeat=n_y - 1):
        xs = np.concatenate([[0], np.cumsum(steps)])
        if xs[-1] != n_x - 1:
            continue
        total = costs[xs, np.arange(n_y)].sum()
        if total < best:
            best, arg = total, xs
    return best, arg


@pytest.mark.parametrize("seed, n_x, n_y, max_skip", [(0, 4, 5, 2), (1, 6, 5, 2), (2, 5, 7, 3), (3, 3, 6, 2),
                                                       (4, 7, 4, 2)])
def test_monotone_path_is_optimal(seed, n_x, n_y, max_skip):
    costs = np.random.default_rng(seed).random((n_x, n_y)).astype(np.float32)
    path, first, last = monotone_path(costs, max_skip)
    assert (first, last) == (0, n_y - 1)
    best, _ = brute_force(costs, max(max_skip, int(np.ceil((n_x - 1) / (n_y - 1)))))
    assert path[0] == 0 and path[-1] == n_x - 1 and np.all(np.diff(path) >= 0)
    assert costs[path, np.arange(n_y)].sum() == pytest.approx(best, rel=1e-6)


def test_monotone_path_widens_its_steps_when_the_recording_is_much_shorter():
    costs = np.ones((50, 5), dtype=np.float32)
    path, _, _ = monotone_path(costs, max_skip=2)
    assert path[0] == 0 and path[-1] == 49 and np.all(np.diff(path) >= 0)
    assert monotone_path(np.ones((3, 1)))[0].tolist() == [0]


def test_monotone_path_follows_a_planted_warp():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, 4))
    warp = np.minimum(np.round(np.linspace(0, 1, 90) ** 1.3 * 59).astype(int), 59)   # recording slower
    y = x[warp] + 0.05 * rng.standard_normal((90, 4))
    path, _, _ = monotone_path(frame_costs(x, y))
    assert np.abs(path - warp).max() <= 1


def test_monotone_path_leaves_a_head_and_tail_that_match_nothing():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((40, 4))
    body = x[np.repeat(np.arange(40), 2)] + 0.05 * rng.standard_normal((80, 4))
    y = np.vstack([5 + rng.standard_normal((30, 4)), body, -5 + rng.standard_normal((20, 4))])
    costs = frame_costs(x, y)
    path, first, last = monotone_path(costs, skip_cost=float(np.median(costs)))
    assert (first, last) == (30, 109)
    assert np.all(path[:30] == 0) and np.all(path[110:] == 39)
    assert np.abs(path[30:110] - np.repeat(np.arange(40), 2)).max() <= 1
    plain, first, last = monotone_path(costs)
    assert (first, last) == (0, 129)


def test_hold_weight_makes_holding_one_frame_dearer():
    costs = np.array([[0.0, 1.0, 1.0, 5.0], [5.0, 1.2, 1.2, 0.0]], dtype=np.float32)
    # holding frame 0 through columns 1-2 (cost 1 + 1 = 2) beats [0, 0, 1, 1] (2.2) and [0, 1, 1, 1] (2.4) ...
    assert monotone_path(costs)[0].tolist() == [0, 0, 0, 1]
    # ... unless holds cost 1.6 times as much: 3.2 against 1.6 + 1.2 + 0 = 2.8 and 1.2 + 1.92 + 0 = 3.12
    assert monotone_path(costs, hold_weight=1.6)[0].tolist() == [0, 0, 1, 1]


def test_frame_costs_is_mean_squared_difference():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    expected = ((x[:, None] - y[None]) ** 2).mean(axis=2)
    np.testing.assert_allclose(frame_costs(x, y), expected, rtol=1e-5)


def test_time_map_interpolates_over_matched_frames_only():
    x_of_y = np.array([0, 0, 2, 3, 3, 3, 4])        # frame 1 skipped, frame 3 held over 3 recording frames
    warp = time_map(x_of_y, rate_x=10.0, rate_y=10.0)
    np.testing.assert_allclose(warp(np.array([0.0, 0.1, 0.2, 0.3, 0.4])), [0.05, 0.125, 0.2, 0.4, 0.6])
    # different frame rates: seconds in, seconds out
    assert time_map(np.arange(5), rate_x=20.0, rate_y=10.0)(np.array([0.1]))[0] == pytest.approx(0.2)


def test_join_close_words_gives_the_closure_to_the_next_word():
    times = np.array([[0.1, 0.3], [0.35, 0.6], [0.9, 1.2]])
    out = join_close_words(times, max_gap=0.1)
    np.testing.assert_allclose(out, [[0.1, 0.3], [0.3, 0.6], [0.9, 1.2]])
    assert times[1, 0] == 0.35                       # input untouched


def test_snap_to_speech_moves_edges_out_of_silence():
    times = np.array([[0.1, 0.5], [0.5, 1.15], [1.3, 1.9]])
    silences = [(0.0, 0.25), (1.05, 1.4), (1.8, 2.0)]
    out = snap_to_speech(times, silences)
    np.testing.assert_allclose(out, [[0.25, 0.5], [0.5, 1.05], [1.4, 1.8]])
    assert times[0, 0] == 0.1


def test_gaps_at_pauses_moves_the_nearest_boundary_into_a_pause():
    times = np.array([[0.0, 0.5], [0.5, 1.2], [1.2, 2.0]])
    out = gaps_at_pauses(times, [(0.62, 0.75)])
    np.testing.assert_allclose(out, [[0.0, 0.62], [0.75, 1.2], [1.2, 2.0]])
    # a pause that already holds a boundary, or lies too far from any, changes nothing
    np.testing.assert_allclose(gaps_at_pauses(times, [(0.45, 0.55)]), times)
    np.testing.assert_allclose(gaps_at_pauses(times, [(0.82, 0.9)], reach=0.1), times)
    np.testing.assert_allclose(gaps_at_pauses(times[:1], [(0.2, 0.3)]), times[:1])


def test_quality_and_order_evidence_tell_the_right_sequence_from_another():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 6))
    y = x[np.repeat(np.arange(80), 2)] + 0.1 * rng.standard_normal((160, 6))
    speech = np.ones(160, dtype=bool)
    right = monotone_path(frame_costs(x, y))[0]
    right_rev = monotone_path(frame_costs(x[::-1], y))[0]
    other = rng.standard_normal((80, 6))
    wrong = monotone_path(frame_costs(other, y))[0]
    wrong_rev = monotone_path(frame_costs(other[::-1], y))[0]
    q_right, q_wrong = frame_quality(x, y, right), frame_quality(other, y, wrong)
    assert q_right.min() >= 0 and q_right.max() <= 1
    assert q_right.mean() > 0.8 > 0.5 > q_wrong.mean()
    assert order_evidence(x, y, right, right_rev, speech) > 0.8
    assert order_evidence(other, y, wrong, wrong_rev, speech) < 0.3
    assert span_mean(np.arange(10.0), 10.0, 0.2, 0.5) == pytest.approx(3.0)
    assert span_mean(np.arange(10.0), 10.0, 0.95, 0.95) == pytest.approx(9.0)


def test_rendering_coverage_marks_the_visited_frames():
    covered = rendering_coverage(np.array([0, 0, 2, 3, 3, 5]), np.ones(7, dtype=bool))
    np.testing.assert_array_equal(covered, [1, 0, 1, 1, 0, 1, 0])
