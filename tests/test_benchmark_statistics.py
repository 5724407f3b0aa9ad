"""Statistics of the benchmarks run over several seeds: means, spreads and the clearly-better test."""

import numpy as np
import pytest

from benchmarks import spatial_transformer
from benchmarks.common import clearly_lower, mean_sd, mean_sd_text, mistakes, mistakes_array
from benchmarks.glimpse_attention import beats_control, summarise

N_TEST = 1000


def _wrong(rate, seed, n=N_TEST):
    """A '0'/'1' mistakes string with exactly round(rate * n) mistakes at random images."""
    w = np.zeros(n, bool)
    w[np.random.default_rng(seed).choice(n, int(round(rate * n)), replace=False)] = True
    return mistakes(w, np.zeros(n, bool))


def _runs(errors_m1, errors_m10, policy="learned", offset=0):
    return [{"data": "translated", "n_glimpses": 8, "policy": policy, "seed": s, "error_M1": e1,
             "error_M10": e10, "wrong_M1": _wrong(e1, 100 * s + offset),
             "wrong_M10": _wrong(e10, 100 * s + offset + 1),
             "hit_rate": 0.3, "distance_to_digit_px": 10.0, "train_seconds": 1.0}
            for s, (e1, e10) in enumerate(zip(errors_m1, errors_m10))]


def test_mistakes_round_trip():
    s = mistakes(np.array([1, 2, 3]), np.array([1, 0, 3]))
    assert s == "010"
    np.testing.assert_array_equal(mistakes_array([s, "111"]), [[0, 1, 0], [1, 1, 1]])


def test_paired_test_counts_only_the_images_where_the_models_differ():
    # the same 100 mistakes plus 30 more: a 3-point gap that is clear when paired
    # (an unpaired binomial test on 10 % vs 13 % of 1,000 images would need ~2.9 points)
    base = np.zeros(N_TEST)
    base[:100] = 1
    worse = base.copy()
    worse[100:130] = 1
    assert clearly_lower(base[None], worse[None])
    assert not clearly_lower(worse[None], base[None])
    # the same gap from unrelated mistakes is not clear
    other = np.zeros(N_TEST)
    other[500:630] = 1
    assert not clearly_lower(base[None], other[None])


def test_one_seed_per_model_is_mcnemar_like():
    assert beats_control(_runs([0.10], [0.10]), _runs([0.20], [0.20], "random", offset=7))
    assert not beats_control(_runs([0.19], [0.19]), _runs([0.20], [0.20], "random", offset=7))


def test_both_monte_carlo_settings_must_win():
    assert not beats_control(_runs([0.10], [0.25]), _runs([0.20], [0.20], "random", offset=7))


def test_seed_to_seed_spread_widens_the_margin():
    control = _runs([0.20, 0.20, 0.20], [0.20, 0.20, 0.20], "random", offset=7)
    steady = _runs([0.14, 0.14, 0.14], [0.14, 0.14, 0.14])
    erratic = _runs([0.02, 0.14, 0.26], [0.02, 0.14, 0.26])     # same mean, large spread
    assert beats_control(steady, control)
    assert not beats_control(erratic, control)


def test_models_must_share_the_test_images():
    with pytest.raises(ValueError, match="same test images"):
        clearly_lower(np.zeros((1, 10)), np.zeros((1, 11)))


def test_summarise_gives_mean_and_sample_sd_over_seeds():
    s = summarise(_runs([0.1, 0.2, 0.3], [0.1, 0.1, 0.1]))
    assert s["seeds"] == [0, 1, 2]
    assert s["error_M1"] == pytest.approx(0.2)
    assert s["error_M1_sd"] == pytest.approx(np.std([0.1, 0.2, 0.3], ddof=1))
    assert s["error_M10_sd"] == pytest.approx(0.0, abs=1e-12)
    assert summarise(_runs([0.1], [0.1]))["error_M1_sd"] == 0.0


def test_mean_sd_of_one_value_has_no_spread():
    assert mean_sd([0.3]) == (0.3, 0.0)
    assert mean_sd([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)))


def test_mean_sd_text_prints_both_with_the_same_digits():
    assert mean_sd_text(0.0717, 0.0068, scale=100) == "7.2 ± 0.7"
    assert mean_sd_text(12.94, 0.052, digits=2) == "12.94 ± 0.05"
    assert mean_sd_text(0.14, 0.0, scale=100, spread=False) == "14.0"


def _stn_run(seed, cnn, affine, alt):
    pose = {"digit_px": 5.0, "similarity_scale": 1.0, "similarity_angle_deg": 0.0}
    return {"kind": "E", "seed": seed, "image_size": [28, 28], "identity_pose": {"digit_px": 7.0},
            "cnn_error": cnn, "st_affine_error": affine, "st_affine_alt_error": alt,
            "cnn_wrong": _wrong(cnn, seed), "st_affine_wrong": _wrong(affine, seed + 10),
            "st_affine_alt_wrong": _wrong(alt, seed + 20),
            "st_affine_pose": pose, "st_affine_alt_pose": pose, "cnn_seconds": 1.0, "st_affine_seconds": 2.0}


def test_spatial_transformer_summary_tests_each_st_against_the_cnn_over_seeds():
    runs = [_stn_run(0, 0.10, 0.05, 0.10), _stn_run(1, 0.11, 0.06, 0.90), _stn_run(2, 0.09, 0.04, 0.10)]
    s = spatial_transformer.summarise(runs)
    assert s["cnn_error"] == (pytest.approx(0.10), pytest.approx(0.01))
    assert s["beats_cnn"] == {"st_affine": True, "st_affine_alt": False}   # one collapsed seed
    assert "st_tps_error" not in s and s["seeds"] == [0, 1, 2]
