"""Long sequences (multiscale DTW) and subsequence search."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mmalign
from mmalign.metrics import deviations


def warped_pair(n, m, seed, d=2):
    """x on a uniform clock, y the same signal under a smooth monotone warp; truth for x."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    warp = t + 0.05 * np.sin(6 * np.pi * t)
    walk = rng.standard_normal((2000, d)).cumsum(axis=0)
    signal = lambda s: np.stack([np.interp(s * 1999, np.arange(2000), walk[:, k])  # noqa: E731
                                 for k in range(d)], axis=1)
    u = np.linspace(0, 1, m)
    x = signal(t)
    y = signal(np.interp(u, warp, t)) + 0.01 * rng.standard_normal((m, d))
    truth = np.c_[np.arange(n), warp * (m - 1)]
    return x, y, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_multiscale_is_within_a_frame_or_two_of_the_exact_path(seed):
    x, y, _ = warped_pair(4000, 3300, seed)
    exact = mmalign.dtw_path(x, y)
    approx = mmalign.dtw_path(x, y, method="multiscale")
    assert approx.cost == pytest.approx(exact.cost, rel=1e-3)
    gap = np.abs(approx.mapping("x") - exact.mapping("x"))
    assert gap.max() <= 2.0
    assert approx.extras["levels"] >= 3


def test_multiscale_respects_a_radius_and_rejects_what_it_cannot_do():
    x, y, _ = warped_pair(3000, 2500, 2)
    path = mmalign.dtw_path(x, y, method="multiscale", radius=700).path()
    assert mmalign.window_mask(3000, 2500, radius=700)[path[:, 0], path[:, 1]].all()
    with pytest.raises(ValueError, match="multiscale"):
        mmalign.dtw_path(x, y, method="multiscale", step_pattern="symmetric2")
    with pytest.raises(ValueError, match="multiscale_radius"):
        mmalign.dtw_path(x, y, method="multiscale", multiscale_radius=0)
    with pytest.raises(ValueError, match="method"):
        mmalign.dtw_path(x, y, method="fast")


def test_multiscale_aligns_120k_frames_in_bounded_memory():
    """Peak memory of a fresh process stays far below 2 GB; the warp is recovered."""
    code = textwrap.dedent(f"""
        import resource, sys
        import numpy as np
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        from test_multiscale_subsequence import warped_pair
        import mmalign
        from mmalign.metrics import median_absolute_deviation
        x, y, truth = warped_pair(120_000, 100_000, 3)
        a = mmalign.dtw_path(x, y, method="multiscale")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(peak_mb, median_absolute_deviation(a, truth), len(a.path()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    peak_mb, median_error, length = float(out[0]), float(out[1]), int(out[2])
    assert peak_mb < 2048
    assert median_error < 1.0
    assert length >= 120_000


def test_subsequence_finds_planted_occurrences_best_first():
    rng = np.random.default_rng(0)
    query = np.sin(np.linspace(0, 2 * np.pi, 40))
    series = 0.05 * rng.standard_normal(1000)
    spans = [(100, 160), (500, 535), (800, 845)]
    for start, stop in spans:
        series[start:stop] += np.sin(np.linspace(0, 2 * np.pi, stop - start))
    matches = mmalign.subsequence_dtw(query, series, k=3)
    found = sorted((m.start, m.stop) for m in matches)
    for (start, stop), (fs, fe) in zip(spans, found):
        assert abs(fs - start) <= 3 and abs(fe - stop) <= 3
    costs = [m.cost for m in matches]
    assert costs == sorted(costs)
    for m in matches:  # the alignment covers the whole query and the reported span
        path = m.alignment.path()
        assert path[0, 0] == 0 and path[-1, 0] == len(query) - 1
        assert path[0, 1] == m.start and path[-1, 1] == m.stop - 1
        assert m.cost == pytest.approx(
            np.sqrt(((query[path[:, 0]] - series[path[:, 1]]) ** 2).sum()))


def test_subsequence_matches_do_not_overlap_and_validate():
    series = np.r_[np.zeros(20), np.sin(np.linspace(0, np.pi, 15)), np.zeros(40)]
    matches = mmalign.subsequence_dtw(np.sin(np.linspace(0, np.pi, 10)), series, k=4)
    spans = [set(range(m.start, m.stop)) for m in matches]
    assert all(not (a & b) for i, a in enumerate(spans) for b in spans[i + 1:])
    with pytest.raises(ValueError, match="k"):
        mmalign.subsequence_dtw([1.0], series, k=0)
    with pytest.raises(ValueError, match="series"):
        mmalign.subsequence_dtw([1.0], [np.nan])


def test_reference_deviation_of_exact_dtw_on_the_warped_pair():
    x, y, truth = warped_pair(1500, 1200, 4)
    assert np.median(deviations(mmalign.dtw_path(x, y), truth)) < 1.0
