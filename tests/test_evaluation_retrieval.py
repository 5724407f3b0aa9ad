"""Cross-modal retrieval evaluation: ranks, recall@k, MRR, chance, correlations, models."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import mmalign
from mmalign.evaluation import (
    RetrievalReport,
    component_correlations,
    retrieval,
    retrieval_from_model,
    retrieval_ranks,
)

torch.set_num_threads(1)


def shared_latent(seed, n=200, k=4, dx=6, dy=5, noise=0.3):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k))
    X = z @ rng.standard_normal((k, dx)) + noise * rng.standard_normal((n, dx))
    Y = np.tanh(z) @ rng.standard_normal((k, dy)) + noise * rng.standard_normal((n, dy))
    return X, Y


def brute_force_scores(a, b, metric):
    """Full (n, n) score matrix, larger = more similar, computed directly in numpy."""
    if metric == "cosine":
        an = a / np.linalg.norm(a, axis=1, keepdims=True)
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        return an @ bn.T
    if metric == "euclidean":
        return -((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    if metric == "dot":
        return a @ b.T
    raise AssertionError(metric)


def brute_force_ranks(S, ties="pessimistic"):
    """Ranks of the diagonal by explicit loops over queries (rows), as documented."""
    n = S.shape[0]
    ranks = np.empty(n, dtype=np.int64)
    for i in range(n):
        others = np.delete(S[i], i)
        if ties == "pessimistic":
            ranks[i] = 1 + np.sum(others >= S[i, i])
        else:
            ranks[i] = 1 + np.sum(others > S[i, i])
    return ranks


# ----------------------------------------------------------------- exact values

@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_perfect_pairing_gives_recall_one_and_mrr_one(metric):
    a = np.random.default_rng(0).standard_normal((50, 4))
    report = retrieval(a, a.copy(), metric=metric)
    for side in (report.a_to_b, report.b_to_a):
        assert side.recall == {1: 1.0, 5: 1.0, 10: 1.0}
        assert side.mrr == 1.0 and side.median_rank == 1.0 and side.mean_rank == 1.0
        np.testing.assert_array_equal(side.ranks, np.ones(50))
    np.testing.assert_allclose(report.correlations, 1.0)


def test_hand_computed_ranks_with_dot_scores():
    # dot score a_i * b_j with positive scalars: every query prefers the largest candidate
    a = np.array([[1.0], [2.0], [3.0], [4.0]])
    b = np.array([[4.0], [3.0], [2.0], [1.0]])
    report = retrieval(a, b, metric="dot", ks=(1, 2, 4))
    np.testing.assert_array_equal(report.a_to_b.ranks, [1, 2, 3, 4])
    np.testing.assert_array_equal(report.b_to_a.ranks, [4, 3, 2, 1])
    for side in (report.a_to_b, report.b_to_a):
        assert side.recall == {1: 0.25, 2: 0.5, 4: 1.0}
        assert side.median_rank == 2.5 and side.mean_rank == 2.5
        assert side.mrr == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, abs=1e-15)


def test_hand_computed_cosine_example():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = np.array([[1.0, 0.1], [1.0, 0.0], [1.0, 1.0]])
    ab, ba = retrieval_ranks(a, b)
    # a0 prefers b1 (cos 1) over b0 (0.995); a1's partner b1 has cos 0, the lowest
    np.testing.assert_array_equal(ab, [2, 3, 1])
    # b1 = (1, 0) prefers a0 (cos 1) and a2 (0.707) over its partner a1 (cos 0)
    np.testing.assert_array_equal(ba, [1, 3, 1])


def test_known_permutation_and_tie_rules():
    # one-hot rows: score 1 with the same unit vector, exactly 0 with every other one
    n = 6
    perm = np.array([0, 2, 1, 3, 5, 4])      # items 0 and 3 stay paired, the rest swap
    a, b = np.eye(n), np.eye(n)[perm]
    pessimistic = retrieval(a, b, ks=(1, 2))
    fixed = perm == np.arange(n)
    # a broken pair scores 0, tied with the n - 2 other zero candidates and behind one
    np.testing.assert_array_equal(pessimistic.a_to_b.ranks, np.where(fixed, 1, n))
    np.testing.assert_array_equal(pessimistic.b_to_a.ranks, np.where(fixed, 1, n))
    optimistic = retrieval(a, b, ks=(1, 2), ties="optimistic")
    np.testing.assert_array_equal(optimistic.a_to_b.ranks, np.where(fixed, 1, 2))
    assert pessimistic.a_to_b.recall[1] == optimistic.a_to_b.recall[1] == 2 / 6
    assert pessimistic.a_to_b.recall[2] == 2 / 6 and optimistic.a_to_b.recall[2] == 1.0


def test_collapsed_embedding_is_ranked_last_not_first():
    a = np.ones((10, 3))
    report = retrieval(a, a + 0.0, metric="euclidean", ks=1)
    assert report.a_to_b.recall[1] == 0.0 and report.a_to_b.median_rank == 10
    optimistic = retrieval(a, a, metric="euclidean", ks=1, ties="optimistic")
    assert optimistic.a_to_b.recall[1] == 1.0


def test_random_independent_views_score_near_chance():
    rng = np.random.default_rng(1)
    n = 500
    report = retrieval(rng.standard_normal((n, 8)), rng.standard_normal((n, 8)))
    assert report.chance.recall == {1: 1 / n, 5: 5 / n, 10: 10 / n}
    assert report.chance.median_rank == report.chance.mean_rank == (n + 1) / 2
    assert report.chance.mrr == pytest.approx(np.sum(1 / np.arange(1, n + 1)) / n)
    for side in (report.a_to_b, report.b_to_a):
        assert side.recall[1] <= 5 / n and side.recall[10] <= 0.05
        assert abs(side.mean_rank - (n + 1) / 2) < 30      # sd of the mean ~ 6.5
        assert 200 < side.median_rank < 300
        assert side.mrr < 3 * report.chance.mrr
    assert np.abs(report.correlations).max() < 0.2


def test_shared_signal_is_far_above_chance_and_recall_is_monotone():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((300, 6))
    report = retrieval(z + 0.5 * rng.standard_normal(z.shape), z + 0.5 * rng.standard_normal(z.shape),
                       ks=(1, 5, 10, 300))
    for side in (report.a_to_b, report.b_to_a):
        r = [side.recall[k] for k in report.ks]
        assert r == sorted(r) and r[-1] == 1.0
        assert side.recall[1] > 50 * report.chance.recall[1]


# ----------------------------------------------------------------- against brute force

@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot"])
def test_agrees_with_brute_force_across_block_sizes(metric):
    rng = np.random.default_rng(3)
    n = 137
    z = rng.standard_normal((n, 5))
    a = z + 0.8 * rng.standard_normal((n, 5))
    b = 2.0 * z + 0.8 * rng.standard_normal((n, 5)) + 0.5
    S = brute_force_scores(a, b, metric)
    want_ab, want_ba = brute_force_ranks(S), brute_force_ranks(S.T)
    assert want_ab.max() > 10  # not a trivial case
    reports = []
    for block_size in (1, 7, 64, n, 1000, None):
        report = retrieval(a, b, metric=metric, block_size=block_size, ks=(1, 5, 10))
        np.testing.assert_array_equal(report.a_to_b.ranks, want_ab)
        np.testing.assert_array_equal(report.b_to_a.ranks, want_ba)
        reports.append(report.as_dict())
    assert all(r == reports[0] for r in reports)
    assert reports[0]["a_to_b"]["recall@5"] == np.mean(want_ab <= 5)
    assert reports[0]["b_to_a"]["median_rank"] == np.median(want_ba)
    assert reports[0]["a_to_b"]["mrr"] == pytest.approx(np.mean(1 / want_ab), abs=1e-14)


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
def test_exact_ties_agree_with_brute_force_across_block_sizes(ties):
    # small integer vectors: many duplicate rows and exactly tied dot products
    rng = np.random.default_rng(4)
    a = rng.integers(-1, 2, size=(60, 3)).astype(float)
    b = rng.integers(-1, 2, size=(60, 3)).astype(float)
    S = a @ b.T
    want_ab, want_ba = brute_force_ranks(S, ties), brute_force_ranks(S.T, ties)
    for block_size in (1, 8, 60):
        ab, ba = retrieval_ranks(a, b, metric="dot", block_size=block_size, ties=ties)
        np.testing.assert_array_equal(ab, want_ab)
        np.testing.assert_array_equal(ba, want_ba)
    other = brute_force_ranks(S, "optimistic" if ties == "pessimistic" else "pessimistic")
    assert not np.array_equal(want_ab, other)  # the tie rule matters on this data


def test_cosine_ignores_row_scale_and_euclidean_does_not():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((80, 4))
    b = a * rng.uniform(0.1, 10.0, size=(80, 1))      # same directions, random lengths
    cosine = retrieval(a, b, metric="cosine")
    euclidean = retrieval(a, b, metric="euclidean")
    assert cosine.a_to_b.recall[1] == cosine.b_to_a.recall[1] == 1.0
    assert euclidean.a_to_b.recall[1] < 0.7 and euclidean.b_to_a.recall[1] < 0.7
    S = brute_force_scores(a, b, "euclidean")
    np.testing.assert_array_equal(euclidean.a_to_b.ranks, brute_force_ranks(S))


@pytest.mark.parametrize("scale", [1e300, 2.0 ** 1000, 1e-300])
@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot"])
def test_ranks_at_the_extremes_are_the_same(metric, scale):
    X, Y = shared_latent(15, n=60, dx=4, dy=4)
    want = retrieval(X, Y, metric=metric)
    got = retrieval(X * scale, Y * scale, metric=metric)
    np.testing.assert_array_equal(got.a_to_b.ranks, want.a_to_b.ranks)
    np.testing.assert_array_equal(got.b_to_a.ranks, want.b_to_a.ranks)
    if metric == "cosine":  # one view alone rescaled: the same cosines
        np.testing.assert_array_equal(retrieval(X * scale, Y).a_to_b.ranks, want.a_to_b.ranks)


def test_big_endian_and_reversed_arrays_give_the_native_answer():
    X, Y = shared_latent(16, n=40, dx=3, dy=3)
    np.testing.assert_array_equal(component_correlations(X.astype(">f8"), Y[::-1][::-1]),
                                  component_correlations(X, Y))
    np.testing.assert_array_equal(component_correlations(X[::-1], Y.astype(">f4")),
                                  component_correlations(X[::-1].copy(), Y.astype(np.float32)))
    report = retrieval(X.astype(">f8"), Y[:, ::-1])
    np.testing.assert_array_equal(report.a_to_b.ranks, retrieval(X, Y[:, ::-1].copy()).a_to_b.ranks)


def test_callable_metric_allows_different_widths():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((40, 3))
    proj = rng.standard_normal((3, 5))
    b = a @ proj + 0.5 * rng.standard_normal((40, 5))

    def projected_neg_l1(qa, cb):
        return -torch.cdist(qa @ torch.as_tensor(proj), cb, p=1)

    report = retrieval(a, b, metric=projected_neg_l1, block_size=16)
    S = -np.abs((a @ proj)[:, None, :] - b[None, :, :]).sum(-1)
    np.testing.assert_array_equal(report.a_to_b.ranks, brute_force_ranks(S))
    np.testing.assert_array_equal(report.b_to_a.ranks, brute_force_ranks(S.T))
    assert report.metric == "projected_neg_l1" and report.correlations is None


def test_scores_are_computed_in_blocks_never_n_by_n(monkeypatch):
    import mmalign.evaluation.crossmodal_retrieval as module

    a = np.random.default_rng(17).standard_normal((50, 3))
    shapes = []

    def recording_dot(qa, cb):
        shapes.append((qa.shape[0], cb.shape[0]))
        return qa @ cb.T

    want = retrieval(a, a + 0.1, metric="dot")
    got = retrieval(a, a + 0.1, metric=recording_dot, block_size=8)
    np.testing.assert_array_equal(got.a_to_b.ranks, want.a_to_b.ranks)
    np.testing.assert_array_equal(got.b_to_a.ranks, want.b_to_a.ranks)
    assert max(p * q for p, q in shapes) == 8 * 50
    assert sorted(set(shapes)) == [(2, 50), (8, 50), (50, 2), (50, 8)]
    # the automatic block size bounds the block at AUTO_BLOCK_ELEMENTS scores
    monkeypatch.setattr(module, "AUTO_BLOCK_ELEMENTS", 200)
    shapes.clear()
    retrieval(a, a + 0.1, metric=recording_dot)
    assert max(p * q for p, q in shapes) == 4 * 50


def test_callable_metric_errors():
    a = np.random.default_rng(7).standard_normal((10, 2))
    with pytest.raises(ValueError, match="metric .*shape"):
        retrieval(a, a, metric=lambda x, y: x @ y.T[:, :1])
    with pytest.raises(ValueError, match="metric .*NaN"):
        retrieval(a, a, metric=lambda x, y: torch.full((len(x), len(y)), float("nan")))


# ----------------------------------------------------------------- inputs

@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot"])
def test_torch_input_equals_numpy_input(metric):
    X, Y = shared_latent(8, n=120, dx=5, dy=5)
    want = retrieval(X, Y, metric=metric).as_dict()
    assert retrieval(torch.from_numpy(X), torch.from_numpy(Y), metric=metric).as_dict() == want
    assert retrieval(torch.from_numpy(X), Y, metric=metric).as_dict() == want
    # float32 tensors: same ranks as float64 arrays on this data (no near ties)
    r32 = retrieval(torch.from_numpy(X).float(), torch.from_numpy(Y).float(), metric=metric)
    want64 = retrieval(X.astype(np.float32), Y.astype(np.float32), metric=metric)
    np.testing.assert_array_equal(r32.a_to_b.ranks, want64.a_to_b.ranks)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_equal_cpu():
    X, Y = shared_latent(9, n=300, dx=5, dy=5)
    want = retrieval(X, Y, block_size=64)
    got = retrieval(torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda(), block_size=64)
    np.testing.assert_array_equal(got.a_to_b.ranks, want.a_to_b.ranks)
    np.testing.assert_array_equal(got.b_to_a.ranks, want.b_to_a.ranks)
    np.testing.assert_allclose(got.correlations, want.correlations, atol=1e-12)


def test_inputs_are_not_modified():
    X, Y = shared_latent(10, n=60, dx=4, dy=4)
    X32 = X.astype(np.float32)
    Xc, Yc, X32c = X.copy(), Y.copy(), X32.copy()
    Xt = torch.from_numpy(X.copy())
    Xtc = Xt.clone()
    for metric in ("cosine", "euclidean", "dot"):
        retrieval(X, Y, metric=metric, block_size=16)
        retrieval(X32, Y, metric=metric)
        retrieval(Xt, Y, metric=metric)
    component_correlations(X, Y)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(Y, Yc)
    np.testing.assert_array_equal(X32, X32c)
    assert torch.equal(Xt, Xtc)
    # read-only arrays work: nothing is written in place
    X.setflags(write=False)
    Y.setflags(write=False)
    retrieval(X, Y, metric="euclidean")


GOOD = np.random.default_rng(11).standard_normal((12, 3))


def _with(value, row=2, col=1):
    out = GOOD.copy()
    out[row, col] = value
    return out


@pytest.mark.parametrize("a, b, kwargs, match", [
    (_with(np.nan), GOOD, {}, "a contains NaN"),
    (GOOD, _with(np.inf), {}, "b contains NaN or infinite"),
    (GOOD, GOOD[:10], {}, "same number of rows"),
    (np.zeros((0, 3)), np.zeros((0, 3)), {}, "a is empty"),
    (GOOD, np.zeros((12, 0)), {}, "b has no features"),
    (GOOD[:, 0], GOOD[:, 0], {}, r"a must have shape \(n, d\)"),
    (GOOD, GOOD[None], {}, r"b must have shape \(n, d\)"),
    (GOOD, GOOD[:, :2], {}, "same number of columns"),
    (GOOD[:1], GOOD[:1], {"ks": 1}, "at least 2 paired rows"),
    (GOOD, GOOD, {"ks": 0}, r"ks must lie in \[1, n\]"),
    (GOOD, GOOD, {"ks": (1, 13)}, r"ks must lie in \[1, n\] = \[1, 12\]"),
    (GOOD, GOOD, {"ks": ()}, "ks must hold at least one"),
    (GOOD, GOOD, {"ks": (1.5,)}, "ks must hold integers"),
    (GOOD, GOOD, {"ks": True}, "ks must"),
    (GOOD, GOOD, {"metric": "manhattan"}, "metric must be one of"),
    (GOOD, GOOD, {"metric": 3}, "metric must be one of"),
    (GOOD, GOOD, {"ties": "mean"}, "ties must be one of"),
    (GOOD, GOOD, {"block_size": 0}, "block_size must be an integer >= 1"),
    (GOOD, GOOD, {"block_size": 2.0}, "block_size must be an integer"),
    (GOOD > 0, GOOD, {}, "a must hold real numbers"),
    (GOOD, GOOD + 1j, {}, "b must hold real numbers"),
    (np.array([["x", "y"], ["z", "w"]]), GOOD[:2, :2], {}, "a cannot be read"),
    (_with(0.0, row=3, col=slice(None)), GOOD, {}, "a row 3 is all zeros"),
])
def test_validation_errors_name_the_argument(a, b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        retrieval(a, b, **kwargs)


def test_zero_rows_are_fine_for_euclidean_and_dot():
    a = _with(0.0, row=3, col=slice(None))
    for metric in ("euclidean", "dot"):
        assert retrieval(a, GOOD, metric=metric).n == 12


def test_mixed_devices_are_rejected():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(ValueError, match="a is on"):
        retrieval(torch.from_numpy(GOOD).cuda(), torch.from_numpy(GOOD))


# ----------------------------------------------------------------- correlations

def test_component_correlations_match_numpy_and_refuse_constant_columns():
    X, Y = shared_latent(12, n=100, dx=4, dy=4)
    want = [np.corrcoef(X[:, c], Y[:, c])[0, 1] for c in range(4)]
    np.testing.assert_allclose(component_correlations(X, Y), want, atol=1e-12)
    np.testing.assert_allclose(component_correlations(X, -Y), -np.asarray(want), atol=1e-12)
    Xc = X.copy()
    Xc[:, 2] = 0.1                       # constant column: correlation undefined
    with pytest.raises(ValueError, match=r"a column 2 is constant"):
        component_correlations(Xc, Y)
    with pytest.raises(ValueError, match=r"b column 0 is constant"):
        component_correlations(Y, np.c_[np.zeros(100), X[:, 1:]])
    rt = component_correlations(torch.from_numpy(X), torch.from_numpy(Y))
    assert isinstance(rt, torch.Tensor)
    np.testing.assert_allclose(rt.numpy(), want, atol=1e-12)
    with pytest.raises(ValueError, match="same number of columns"):
        component_correlations(X, Y[:, :3])


@pytest.mark.parametrize("scale", [1e300, 2.0 ** 1000, 1e-300, 1e-310])
def test_component_correlations_at_the_extremes_are_the_same(scale):
    X, Y = shared_latent(14, n=300, dx=3, dy=3)
    want = component_correlations(X, Y)
    np.testing.assert_allclose(component_correlations(X * scale, Y), want, rtol=1e-9)
    mixed = X * np.array([scale, 1.0, 1.0 / scale if scale > 1 else 1.0])
    np.testing.assert_allclose(component_correlations(mixed, Y * scale), want, rtol=1e-9)


def test_correlations_of_cca_variates_are_the_canonical_correlations():
    X, Y = shared_latent(13, n=300)
    model = mmalign.CCA(n_components=3).fit(X, Y)
    report = retrieval_from_model(model, X, Y)
    np.testing.assert_allclose(report.correlations, model.correlations_, atol=1e-10)


# ----------------------------------------------------------------- report

def test_report_is_frozen_serialisable_and_readable():
    X, Y = shared_latent(14, n=50, dx=3, dy=3)
    report = retrieval(X, Y, ks=(1, 5))
    assert isinstance(report, RetrievalReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.n = 3
    with pytest.raises(ValueError):
        report.a_to_b.ranks[0] = 7          # read-only
    data = json.loads(json.dumps(report.as_dict()))
    assert set(data["a_to_b"]) == {"recall@1", "recall@5", "median_rank", "mean_rank", "mrr"}
    assert data["chance"]["recall@5"] == 0.1 and data["n"] == 50 and len(data["correlations"]) == 3
    assert len(report.as_dict(ranks=True)["b_to_a"]["ranks"]) == 50
    text = str(report)
    assert text == report.to_markdown()
    lines = text.splitlines()
    assert lines[0] == "| direction | R@1 | R@5 | median rank | mean rank | MRR |"
    assert lines[2].startswith("| a → b | ") and lines[4].startswith("| chance | 0.020 | 0.100 | 25.5 |")
    assert "| image → caption |" in report.to_markdown(names=("image", "caption"))
    assert "50 pairs, metric cosine, ties pessimistic" in text


# ----------------------------------------------------------------- models

def test_retrieval_from_cca_far_above_chance_on_held_out_pairs():
    X, Y = shared_latent(15, n=400, noise=0.2)
    model = mmalign.CCA(n_components=4).fit(X[:200], Y[:200])
    report = retrieval_from_model(model, X[200:], Y[200:], ks=(1, 10))
    zx, zy = model.transform(X[200:], Y[200:])
    assert report.as_dict() == retrieval(zx, zy, ks=(1, 10)).as_dict()
    assert report.a_to_b.recall[1] > 20 * report.chance.recall[1]
    swapped = retrieval_from_model(model, X[200:], Y[200:], views=(1, 0), ks=(1, 10))
    np.testing.assert_array_equal(swapped.a_to_b.ranks, report.b_to_a.ranks)
    with pytest.raises(ValueError, match="views must hold indices"):
        retrieval_from_model(model, X, Y, views=(0, 2))
    with pytest.raises(ValueError, match="two different views"):
        retrieval_from_model(model, X, Y, views=(1, 1))
    with pytest.raises(ValueError, match="list of views"):
        retrieval_from_model(model, X)


def test_retrieval_from_multiview_model_picks_two_views():
    rng = np.random.default_rng(16)
    z = rng.standard_normal((150, 2))
    views = [z @ rng.standard_normal((2, 4)), np.tanh(z) @ rng.standard_normal((2, 3)), z ** 3]
    model = mmalign.projection.DeepMCCA(n_components=2, hidden=(8,),
                                        train={"max_epochs": 3, "batch_size": 150}).fit(views)
    out = model.transform(views)
    report = retrieval_from_model(model, views, views=(0, 2))
    assert report.as_dict() == retrieval(out[0], out[2]).as_dict()
    with pytest.raises(ValueError, match=r"views must hold indices in \[0, 2\]"):
        retrieval_from_model(model, views, views=(0, 3))


def test_retrieval_from_dctw_uses_its_deep_cca():
    t = np.linspace(0, 1, 40)
    x = np.c_[np.sin(6 * t), np.cos(4 * t)]
    y = np.tanh(np.c_[np.sin(6 * t), np.cos(4 * t), np.sin(6 * t) * np.cos(4 * t)])
    model = mmalign.DCTW(n_outer=1, epochs_per_step=2, hidden=(8,)).fit([(x, y)])
    report = retrieval_from_model(model, x, y, ks=1)
    assert report.as_dict() == retrieval(*model.model_.transform(x, y), ks=1).as_dict()


def test_retrieval_from_model_rejects_objects_without_transform():
    with pytest.raises(ValueError, match="transform method"):
        retrieval_from_model(object(), GOOD, GOOD)

    class OneView:
        def transform(self, X, Y=None):
            return np.asarray(X)

    with pytest.raises(ValueError, match="not one projected array per view"):
        retrieval_from_model(OneView(), GOOD, GOOD)
