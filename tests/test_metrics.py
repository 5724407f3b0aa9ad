import numpy as np
import pytest

from mmalign import metrics
from mmalign.alignment import Alignment
from mmalign.metrics import (
    area_between_paths,
    deviations,
    fraction_within,
    mean_absolute_deviation,
    median_absolute_deviation,
    normalized_area_between_paths,
)


def diagonal(n):
    return Alignment(np.stack([np.arange(n), np.arange(n)], axis=1))


def random_path(rng, n_x, n_y):
    p = [(0, 0)]
    while p[-1] != (n_x - 1, n_y - 1):
        i, j = p[-1]
        steps = [(di, dj) for di, dj in [(1, 0), (0, 1), (1, 1)] if i + di < n_x and j + dj < n_y]
        di, dj = steps[rng.integers(len(steps))]
        p.append((i + di, j + dj))
    return np.array(p)


# ------------------------------------------------------------------ deviations
def test_identical_reference_gives_zero():
    a = diagonal(6)
    assert mean_absolute_deviation(a, a) == 0.0
    assert median_absolute_deviation(a, a.path()) == 0.0
    assert fraction_within(a, a, 0) == 1.0


def test_constant_shift_gives_expected_deviation():
    a = diagonal(10)
    ref = np.stack([np.arange(2, 8), np.arange(2, 8) + 1.5], axis=1)
    np.testing.assert_allclose(deviations(a, ref), np.full(6, 1.5))
    assert mean_absolute_deviation(a, ref) == pytest.approx(1.5)
    assert median_absolute_deviation(a, ref) == pytest.approx(1.5)


def test_fractional_reference_is_interpolated():
    # Estimated: x frame i maps to y = 2 i (a slope-2 warp given as mapping means).
    a = Alignment([[0, 0], [0, 1], [1, 2], [1, 3], [2, 4], [2, 5]])
    np.testing.assert_allclose(a.mapping("x"), [0.5, 2.5, 4.5])
    np.testing.assert_allclose(deviations(a, [[0.5, 1.5], [1.25, 3.0]]), [0.0, 0.0])


def test_frame_rate_converts_to_seconds():
    a = diagonal(10)
    ref = np.array([[1.0, 3.0], [2.0, 2.0], [5.0, 6.0]])  # deviations 2, 0, 1 frames
    assert mean_absolute_deviation(a, ref) == pytest.approx(1.0)
    assert mean_absolute_deviation(a, ref, frame_rate=4.0) == pytest.approx(0.25)
    assert median_absolute_deviation(a, ref, frame_rate=4.0) == pytest.approx(0.25)


def test_fraction_within_tolerance():
    a = diagonal(10)
    ref = np.array([[1.0, 3.0], [2.0, 2.0], [5.0, 6.0], [7.0, 7.5]])  # 2, 0, 1, 0.5
    assert fraction_within(a, ref, 0) == 0.25
    assert fraction_within(a, ref, 0.5) == 0.5
    assert fraction_within(a, ref, 1) == 0.75  # boundary counts as within
    assert fraction_within(a, ref, 2) == 1.0
    assert fraction_within(a, ref, 0.1, frame_rate=10.0) == 0.75  # 0.1 s == 1 frame
    assert fraction_within(a, ref, 0.09, frame_rate=10.0) == 0.5


def test_reference_alignment_must_match_shape():
    with pytest.raises(ValueError, match="reference"):
        deviations(diagonal(4), diagonal(5))


def test_estimate_given_as_array_path():
    assert mean_absolute_deviation([[0, 0], [1, 1], [2, 2]], [[1, 2]]) == 1.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda a: deviations(a, np.zeros((0, 2))), "reference"),
        (lambda a: deviations(a, np.zeros((3, 3))), "reference"),
        (lambda a: deviations(a, [[0.0, np.nan]]), "reference"),
        (lambda a: deviations(a, [["a", "b"]]), "reference"),
        (lambda a: deviations([[0, 0.5]], [[0, 0]]), "alignment"),
        (lambda a: mean_absolute_deviation(a, [[0, 0]], frame_rate=0), "frame_rate"),
        (lambda a: median_absolute_deviation(a, [[0, 0]], frame_rate=-1.0), "frame_rate"),
        (lambda a: fraction_within(a, [[0, 0]], -1), "tolerance"),
        (lambda a: fraction_within(a, [[0, 0]], np.nan), "tolerance"),
        (lambda a: fraction_within(a, [[0, 0]], 1, frame_rate=np.inf), "frame_rate"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(diagonal(3))


@pytest.mark.parametrize("metric",
                         [deviations, mean_absolute_deviation, median_absolute_deviation])
@pytest.mark.parametrize(
    "row, match",
    [
        ([3.0, 12.5], r"reference row 1: y position 12\.5 lies outside \[0, 9\]"),
        ([-0.5, 2.0], r"reference row 1: x position -0\.5 lies outside \[0, 9\]"),
        ([10.0, 2.0], r"reference row 1: x position 10 lies outside \[0, 9\]"),
    ],
)
def test_reference_outside_the_sequences_is_refused(metric, row, match):
    with pytest.raises(ValueError, match=match):
        metric(diagonal(10), [[0.0, 0.0], row])


def test_reference_at_the_ends_up_to_round_off_is_accepted():
    # seconds converted to frames: 0.28 s at 25 frames per second is 7.000000000000001
    end = 0.28 * 25.0
    assert end > 7.0
    np.testing.assert_allclose(deviations(diagonal(8), [[0.0, 0.0], [7.0, end], [end, 7.0]]),
                               [0.0, 0.0, 0.0], atol=1e-12)
    assert mean_absolute_deviation(diagonal(8), [[7.0, 7.0]], frame_rate=25.0) == 0.0


def test_reference_array_untouched():
    ref = np.array([[1, 1], [2, 3]])
    deviations(diagonal(4), ref)
    assert ref.tolist() == [[1, 1], [2, 3]] and ref.dtype.kind == "i"


# ------------------------------------------------------------------------ area
def test_area_hand_computed():
    # Unit square between the two corner paths of a 2 x 2 grid.
    assert area_between_paths([[0, 0], [1, 0], [1, 1]], [[0, 0], [0, 1], [1, 1]]) == 1.0
    # Half the unit square between the diagonal and one corner path.
    assert area_between_paths([[0, 0], [1, 1]], [[0, 0], [1, 0], [1, 1]]) == 0.5
    # Two unit squares on opposite sides, crossing at (1, 1): areas add, no cancellation.
    p = [[0, 0], [1, 0], [1, 1], [1, 2], [2, 2]]
    q = [[0, 0], [0, 1], [1, 1], [2, 1], [2, 2]]
    assert area_between_paths(p, q) == 2.0
    # Rectangle 3 x 1: along the bottom then up, vs up then along the top.
    assert area_between_paths([[0, 0], [1, 0], [2, 0], [3, 0], [3, 1]],
                              [[0, 0], [0, 1], [1, 1], [2, 1], [3, 1]]) == 3.0


def test_area_identical_zero_and_single_cell():
    rng = np.random.default_rng(0)
    p = random_path(rng, 6, 9)
    assert area_between_paths(p, p) == 0.0
    assert area_between_paths([[0, 0]], [[0, 0]]) == 0.0


def test_area_symmetric_and_accepts_alignments():
    rng = np.random.default_rng(1)
    for _ in range(5):
        p, q = random_path(rng, 7, 5), random_path(rng, 7, 5)
        assert area_between_paths(p, q) == pytest.approx(area_between_paths(q, p))
        assert area_between_paths(Alignment(p), Alignment(q)) == pytest.approx(area_between_paths(p, q))


def test_area_matches_grid_estimate():
    # Independent check: count fine grid points lying between the two polylines.
    rng = np.random.default_rng(2)
    n_x, n_y = 6, 8
    p, q = random_path(rng, n_x, n_y), random_path(rng, n_x, n_y)
    gi, gj = np.meshgrid(np.linspace(0, n_x - 1, 601), np.linspace(0, n_y - 1, 801), indexing="ij")
    u, v = (gi + gj).ravel(), (gj - gi).ravel()

    def v_of(path):
        return np.interp(u, path.sum(axis=1), path[:, 1] - path[:, 0])

    vp, vq = v_of(p), v_of(q)
    inside = (v >= np.minimum(vp, vq)) & (v <= np.maximum(vp, vq))
    estimate = inside.mean() * (n_x - 1) * (n_y - 1)
    assert area_between_paths(p, q) == pytest.approx(estimate, abs=0.1)


def test_crossing_inside_unit_interval_is_exact():
    # |f| for f going linearly from 1 to -1 on [0, 1]: two triangles of area 1/4.
    assert metrics._signed_gap_integral(np.array([1.0, -1.0])) == pytest.approx(0.5)
    assert metrics._signed_gap_integral(np.array([3.0, -1.0])) == pytest.approx((9 + 1) / 8)
    assert metrics._signed_gap_integral(np.array([2.0, 0.0, -2.0])) == pytest.approx(2.0)


def test_normalized_area():
    p = [[0, 0], [1, 0], [1, 1]]
    q = [[0, 0], [0, 1], [1, 1]]
    assert normalized_area_between_paths(p, q) == pytest.approx(1.0 / 4)


@pytest.mark.parametrize(
    "p, q, match",
    [
        ([[0, 0], [1, 1]], [[0, 0], [1, 0], [2, 1]], "end"),
        ([[1, 1], [2, 2]], [[0, 0], [2, 2]], "start"),
        ([[0, 0], [2, 2]], [[0, 0], [1, 1], [2, 2]], "continuous"),
        ([[0, 0], [1, 1], [1, 0], [1, 1]], [[0, 0], [1, 1]], "monotone"),
        ([[0, 0], [0, 0], [1, 1]], [[0, 0], [1, 1]], "monotone"),
        ([[0, 0], [1, 1]], [[0, 0.5], [1, 1]], "q"),
    ],
)
def test_area_bad_paths(p, q, match):
    with pytest.raises(ValueError, match=match):
        area_between_paths(p, q)


def test_area_alignment_must_end_at_its_corner():
    with pytest.raises(ValueError, match="p must end"):
        area_between_paths(Alignment([[0, 0], [1, 1]], shape=(3, 3)), [[0, 0], [1, 1]])


# ------------------------------------------------------------------ alignment error rate
from mmalign.metrics import (  # noqa: E402
    alignment_error_rate,
    attention_mass_inside,
    corpus_alignment_error_rate,
    pointing_accuracy,
    precision_recall_links,
)


def test_aer_hand_computed():
    # links are (source, target) pairs
    sure = {(0, 0), (1, 1), (3, 2)}
    possible = {(2, 2), (3, 3)}  # plus the sure links
    # A = {(0,0), (1,1), (2,2), (0,3)}: A∩S = 2, A∩P = 3, |A| + |S| = 7
    predicted = {(0, 0), (1, 1), (2, 2), (0, 3)}
    assert alignment_error_rate(predicted, sure, possible) == pytest.approx(1 - 5 / 7)
    assert precision_recall_links(predicted, sure, possible) == (pytest.approx(3 / 4), pytest.approx(2 / 3))
    # possible links alone: no credit on the sure side, full credit on the possible side
    assert alignment_error_rate({(2, 2)}, {(3, 2)}, {(2, 2)}) == pytest.approx(1 - 1 / 2)


def test_aer_sure_is_included_in_possible():
    # a sure link missing from `possible` still counts as possible (S ⊆ P)
    sure = {(0, 0), (1, 1)}
    assert alignment_error_rate(sure, sure, possible={(1, 0)}) == 0.0
    assert alignment_error_rate(sure, sure, possible=None) == 0.0
    assert alignment_error_rate({(0, 0), (1, 0)}, sure, {(1, 0)}) == pytest.approx(1 - 3 / 4)
    assert alignment_error_rate({(0, 0), (1, 0)}, sure) == pytest.approx(1 - 2 / 4)


def test_aer_perfect_and_empty():
    sure = {(0, 1), (1, 0)}
    assert alignment_error_rate(sure, sure) == 0.0
    assert alignment_error_rate(set(), sure) == 1.0
    assert alignment_error_rate([], sure, {(0, 0)}) == 1.0
    assert alignment_error_rate({(5, 5)}, sure) == 1.0
    with pytest.raises(ValueError, match="undefined"):
        alignment_error_rate(set(), set(), {(0, 0)})


def test_aer_input_forms_agree():
    # 3 source x 2 target positions: boolean matrices (n_source, n_target), links (s, t)
    sure_m = np.array([[False, True], [True, False], [False, False]])
    possible_m = sure_m | np.array([[False, False], [False, False], [True, False]])
    links = {(2, 0), (1, 1)}
    expected = alignment_error_rate(links, {(1, 0), (0, 1)}, {(2, 0)})
    assert expected == pytest.approx(1 - 1 / 4)
    pred_m = np.zeros((3, 2), dtype=bool)
    pred_m[2, 0] = pred_m[1, 1] = True
    assert alignment_error_rate(pred_m, sure_m, possible_m) == pytest.approx(expected)
    assert alignment_error_rate(np.array([[2, 0], [1, 1]]), sure_m, possible_m) == pytest.approx(expected)
    assert alignment_error_rate(torch_bool(pred_m), torch_bool(sure_m), possible_m) == pytest.approx(expected)
    # attention: each target position's weights over the source (distribution_over="x"),
    # averaged over heads; one link per target position, its argmax source position
    weights = np.array([[0.1, 0.3], [0.2, 0.6], [0.7, 0.1]])
    att = Alignment(weights=np.stack([weights, weights]), weight_axes=("head",), distribution_over="x",
                    monotonic=False)
    assert alignment_error_rate(att, sure_m, possible_m) == pytest.approx(expected)
    # the same attention the other way round (target on side x) scores the transposed gold
    assert alignment_error_rate(att.transpose(), sure_m.T, possible_m.T) == pytest.approx(expected)
    links_path = Alignment([[2, 0], [1, 1]], monotonic=False)  # word links: not a warping
    assert alignment_error_rate(links_path, sure_m, possible_m) == pytest.approx(expected)


def torch_bool(m):
    import torch

    return torch.from_numpy(m)


def test_aer_ignore_unlinked_targets():
    sure = {(0, 0), (1, 2)}  # target position 1 (a separator) has no gold link
    predicted = {(0, 0), (0, 1), (1, 2)}
    assert alignment_error_rate(predicted, sure) == pytest.approx(1 - 4 / 5)
    assert alignment_error_rate(predicted, sure, ignore_unlinked_targets=True) == 0.0
    # a target linked only as possible is scored
    assert alignment_error_rate(predicted, sure, {(1, 1)}, ignore_unlinked_targets=True) == pytest.approx(
        1 - 4 / 5
    )
    # the target is side y: an unlinked source position (side x) is no reason to drop a link
    assert alignment_error_rate({(0, 0), (2, 1)}, {(0, 0), (1, 1)}, ignore_unlinked_targets=True) == \
        pytest.approx(1 - 2 / 4)
    # the same with an attention Alignment (3 source x 3 target positions)
    w = np.array([[0.8, 0.6, 0.1], [0.1, 0.2, 0.8], [0.1, 0.2, 0.1]])
    att = Alignment(weights=w, distribution_over="x", monotonic=False)
    assert alignment_error_rate(att, sure) == pytest.approx(1 - 4 / 5)
    assert alignment_error_rate(att, sure, ignore_unlinked_targets=True) == 0.0


def test_aer_input_errors():
    with pytest.raises(ValueError, match="predicted.*distribution_over='x'"):
        alignment_error_rate(np.array([[0.2, 0.8]]), {(0, 1)})
    with pytest.raises(ValueError, match="shapes"):
        alignment_error_rate(np.eye(2, dtype=bool), np.eye(3, dtype=bool))
    with pytest.raises(ValueError, match="shapes"):
        att = Alignment(weights=np.full((3, 2), 0.5), distribution_over="x", monotonic=False)
        alignment_error_rate(att, np.zeros((2, 3), dtype=bool))     # gold in the other orientation
    with pytest.raises(ValueError, match=r"\(n_source, n_target\)"):
        alignment_error_rate({(0, 0)}, np.ones((2, 2, 2), dtype=bool))
    with pytest.raises(ValueError, match="sure"):
        alignment_error_rate({(0, 0)}, np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="possible"):
        alignment_error_rate({(0, 0)}, {(0, 0)}, np.array([[-1, 0]]))
    with pytest.raises(ValueError, match="sure"):
        alignment_error_rate({(0, 0)}, np.ones((2, 2, 2), dtype=bool))


def test_corpus_aer_sums_counts():
    predicted = [{(0, 0), (1, 1)}, {(0, 1)}]
    sure = [{(0, 0), (1, 1)}, {(0, 0), (1, 1), (2, 2)}]
    # hits: 2 + 2 + 0 + 0, |A| + |S| = 3 + 5
    assert corpus_alignment_error_rate(predicted, sure) == pytest.approx(1 - 4 / 8)
    assert corpus_alignment_error_rate(predicted[:1], sure[:1]) == 0.0
    with pytest.raises(ValueError, match="same number"):
        corpus_alignment_error_rate(predicted, sure[:1])
    with pytest.raises(ValueError, match="sentence 1"):
        corpus_alignment_error_rate([set(), np.array([[0.5]])], [{(0, 0)}, {(0, 0)}])


@pytest.mark.parametrize("name", ["predicted", "sure", "possible"])
def test_corpus_aer_names_a_missing_or_unusable_argument(name):
    args = {"predicted": [{(0, 0)}], "sure": [{(0, 0)}], "possible": [{(0, 1)}]}
    for bad in (None, 3) if name != "possible" else (3,):
        args[name] = bad
        with pytest.raises(ValueError, match=rf"^{name} must be a sequence"):
            corpus_alignment_error_rate(args["predicted"], args["sure"], args["possible"])


# ------------------------------------------------------------------ pointing
def test_pointing_accuracy_sequences_and_images():
    w = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.2, 0.6]])
    masks = np.array([[False, True, True], [False, True, False], [False, False, False]])
    # third row has no gold region: skipped
    assert pointing_accuracy(w, masks) == 0.5
    assert attention_mass_inside(w, masks) == pytest.approx((0.9 + 0.2) / 2)
    # (T, H, W): a box per step
    img = np.zeros((2, 4, 5))
    img[0, 1, 2] = img[1, 3, 4] = 1.0
    boxes = np.zeros((2, 4, 5), dtype=bool)
    boxes[0, 0:2, 1:3] = True
    boxes[1, 0:2, 0:2] = True
    assert pointing_accuracy(img, boxes) == 0.5
    assert attention_mass_inside(img, boxes) == pytest.approx(0.5)


def test_pointing_accepts_tensors_and_unnormalised_weights():
    import torch

    w = torch.tensor([[2.0, 6.0], [1.0, 1.0]])
    masks = torch.tensor([[False, True], [True, False]])
    assert pointing_accuracy(w, masks) == 1.0  # tie goes to the first location
    assert attention_mass_inside(w, masks) == pytest.approx((0.75 + 0.5) / 2)


def test_pointing_input_errors():
    w = np.full((2, 3), 1 / 3)
    m = np.eye(2, 3, dtype=bool)
    with pytest.raises(ValueError, match="NaN"):
        pointing_accuracy(np.array([[np.nan, 1.0, 0.0], [0.0, 1.0, 0.0]]), m)
    with pytest.raises(ValueError, match="masks"):
        pointing_accuracy(w, np.eye(3, dtype=bool))
    with pytest.raises(ValueError, match="masks"):
        pointing_accuracy(w, m.astype(int))
    with pytest.raises(ValueError, match="masks"):
        pointing_accuracy(w, np.zeros((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="weights"):
        pointing_accuracy(np.ones(3), np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="non-negative"):
        attention_mass_inside(-w, m)
    with pytest.raises(ValueError, match="zero total"):
        attention_mass_inside(np.zeros((2, 3)), m)
    with pytest.raises(ValueError, match="no soft weights"):
        pointing_accuracy(Alignment([[0, 0], [1, 1]], monotonic=False), np.eye(2, dtype=bool))


def test_pointing_reads_an_alignment_one_row_per_target_step():
    w = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.2, 0.6]])     # (step, position)
    masks = np.array([[False, True, True], [False, True, False], [False, False, False]])
    expected = (pointing_accuracy(w, masks), attention_mass_inside(w, masks))
    # the attention aligners' order: positions on side x, steps on side y
    att = Alignment(weights=w.T, distribution_over="x", monotonic=False)
    assert (pointing_accuracy(att, masks), attention_mass_inside(att, masks)) == expected
    rows = Alignment(weights=w, distribution_over="y", monotonic=False)
    assert (pointing_accuracy(rows, masks), attention_mass_inside(rows, masks)) == expected


# ------------------------------------------------------------------ geometric transforms
def test_transform_sending_a_point_to_infinity_is_refused_naming_it():
    from mmalign.metrics import transform_point_error

    horizon = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # w = x + 1
    with pytest.raises(ValueError, match=r"pred sample 0 maps point \(-1, -1\) to infinity"):
        transform_point_error(horizon[None], np.eye(3)[None])
    with pytest.raises(ValueError, match=r"true sample 1 maps point \(-1, 0\)"):
        transform_point_error(np.eye(3)[None].repeat(2, 0), np.stack([np.eye(3), horizon]),
                              points=[[0.5, 0.5], [-1.0, 0.0]])
