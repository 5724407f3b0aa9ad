"""The neural estimator base (mmalign.nn.estimator): ``train`` as one nested, clonable
hyper-parameter; construction does no work; a seeded build; fit continues; save / load of
``module_`` (files of the estimators that were torch modules included)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from sklearn.base import clone

import mmalign
from test_aligner_roundtrip import write_as_earlier_file
from mmalign.aligner import Estimator, TransformerMixin
from mmalign.nn.estimator import TorchAligner, TorchEstimator
from mmalign.nn.train import TrainConfig, check_config
from mmalign.projection import DeepCCA, DeepMCCA


def _views(n=60, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    return z @ rng.standard_normal((2, 4)), np.tanh(z) @ rng.standard_normal((2, 3))


# ------------------------------------------------------------------------- TrainConfig
def test_train_config_follows_the_estimator_protocol():
    config = TrainConfig(max_epochs=5)
    params = config.get_params()
    assert params == dataclasses.asdict(config) and list(params)[0] == "max_epochs"
    assert config.set_params(lr=0.5, seed=None) is config and (config.lr, config.seed) == (0.5, None)
    with pytest.raises(ValueError, match="'lrr' for TrainConfig"):
        config.set_params(lrr=1.0)
    copy = clone(config)
    assert copy == config and copy is not config


@pytest.mark.parametrize("field,value", [("max_epochs", 0), ("batch_size", 1.5), ("lr", -1.0),
                                         ("lr", float("nan")), ("weight_decay", -1),
                                         ("optimizer", "lbfgs"), ("scheduler", "step"),
                                         ("grad_clip", 0), ("device", 3), ("patience", -1),
                                         ("seed", 1.5), ("checkpoint", 3), ("shuffle", 1)])
def test_check_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^train\.{field}: "):
        check_config(TrainConfig(**{field: value}), prefix="train.")
    check_config(TrainConfig())


# ------------------------------------------------------------------------- train=
def test_train_none_mapping_or_config():
    assert DeepCCA.TRAIN_DEFAULTS == {"max_epochs": 200, "batch_size": 256, "lr": 1e-3,
                                      "seed": 0, "device": "cpu"}
    default = DeepCCA().train_config()
    assert (default.max_epochs, default.batch_size, default.device) == (200, 256, "cpu")
    assert default.optimizer == TrainConfig().optimizer
    merged = DeepCCA(train={"max_epochs": 6, "weight_decay": 0.1}).train_config()
    assert (merged.max_epochs, merged.weight_decay, merged.batch_size) == (6, 0.1, 256)
    given = TrainConfig(max_epochs=7)
    as_given = DeepCCA(train=given).train_config()
    assert as_given == given and as_given is not given  # TrainConfig's own defaults apply
    assert as_given.device == "auto"


def test_train_config_refuses_what_is_not_a_config():
    with pytest.raises(ValueError, match=r"train: unknown field\(s\) \['epochs'\]"):
        DeepCCA(train={"epochs": 3}).train_config()
    with pytest.raises(ValueError, match="train must be None, a mapping"):
        DeepCCA(train=3).train_config()
    with pytest.raises(ValueError, match=r"^train\.lr: "):
        DeepCCA(train={"lr": 0}).fit(*_views())
    with pytest.raises(ValueError, match=r"^train\.batch_size must be >= 2"):
        DeepMCCA(train=TrainConfig(batch_size=1)).fit(list(_views()))


def test_construction_stores_and_does_nothing():
    encoders = [torch.nn.Linear(4, 2), torch.nn.Linear(3, 2)]
    train = {"lr": -1.0}
    model = DeepMCCA(encoders=encoders, n_components=-3, train=train)
    assert model.encoders is encoders and model.train is train and model.n_components == -3
    assert not hasattr(model, "module_")
    with pytest.raises(ValueError, match="n_components"):
        model.fit(list(_views()))


@pytest.mark.parametrize("train", [None, {"max_epochs": 3}, TrainConfig(max_epochs=3)],
                         ids=["none", "mapping", "config"])
def test_set_params_reaches_train_and_clone_copies_it(train):
    model = DeepCCA(hidden=(4,), train=train)
    assert model.set_params(train__lr=0.01, n_components=1) is model
    assert model.train_config().lr == 0.01 and model.n_components == 1
    if isinstance(train, TrainConfig):
        assert model.train is train and train.lr == 0.01
    else:
        assert model.train == {**(train or {}), "lr": 0.01}
        assert train is None or "lr" not in train  # the caller's dict is left alone
    params = model.get_params()
    assert params["train__lr"] == 0.01 and params["n_components"] == 1
    copy = clone(model)
    assert copy.train == model.train and copy.train is not model.train
    assert repr(copy) == repr(model)
    with pytest.raises(ValueError, match="train__lrr"):
        DeepCCA(train=None if train is None else dict(max_epochs=3)).set_params(train__lrr=1)
    # the whole train first, then its fields (scikit-learn's order)
    model.set_params(train={"max_epochs": 2}, train__seed=5)
    assert model.train == {"max_epochs": 2, "seed": 5}


def test_grid_search_reaches_train_fields():
    from sklearn.model_selection import ParameterGrid

    model = DeepCCA(hidden=(4,), train={"max_epochs": 2})
    fitted = [clone(model).set_params(**p).fit(*_views()) for p in
              ParameterGrid({"train__lr": [1e-3, 1e-2]})]
    assert [m.train_config().lr for m in fitted] == [1e-3, 1e-2]
    assert not np.array_equal(fitted[0].transform(_views()[0]), fitted[1].transform(_views()[0]))


# ------------------------------------------------------------------------- the network
def test_seeded_build_is_reproducible_and_leaves_the_global_rng_alone():
    model = DeepCCA(x_dim=4, y_dim=3, hidden=(4,), train={"seed": 3})
    state = torch.random.get_rng_state()
    first = {k: v.clone() for k, v in model._build_module().state_dict().items()}
    assert torch.equal(torch.random.get_rng_state(), state)
    again = model._build_module().state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    # X's MLP from the seed, Y's from the seed + 1 (as DeepCCA always initialised them)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        y_mlp = mmalign.projection.mlp_encoder(3, 2, hidden=(4,))
    assert all(torch.equal(a, b) for a, b in zip(y_mlp.state_dict().values(),
                                                 model.module_.encoder_y.state_dict().values()))
    other = DeepCCA(x_dim=4, y_dim=3, hidden=(4,), train={"seed": 4})._build_module().state_dict()
    assert not torch.equal(first["encoder_x.0.weight"], other["encoder_x.0.weight"])


def test_fit_builds_the_module_and_a_second_fit_continues():
    X, Y = _views()
    model = DeepCCA(hidden=(4,), train={"max_epochs": 2})
    with pytest.raises(ValueError, match="^this DeepCCA is not fitted yet"):
        model.transform(X)
    model.fit(X, Y)
    module = model.module_
    assert isinstance(module, torch.nn.Module) and not isinstance(model, torch.nn.Module)
    assert model.device_ == torch.device("cpu") and len(model.history_["train_loss"]) == 2
    before = {k: v.clone() for k, v in module.state_dict().items()}
    model.fit(X, Y)
    assert model.module_ is module  # trained on from its weights
    assert not torch.equal(before["encoder_x.0.weight"], module.state_dict()["encoder_x.0.weight"])
    assert model.to("cpu") is model and model.device_ == torch.device("cpu")
    assert not hasattr(clone(model), "module_")


# ------------------------------------------------------------------------- save / load
def test_save_load_keeps_a_train_config_and_rebuilds_the_module(tmp_path):
    X, Y = _views()
    model = DeepCCA(hidden=(4,), train=TrainConfig(max_epochs=2, batch_size=30, device="cpu"))
    model.fit(X, Y).save(tmp_path / "m.npz")
    loaded = Estimator.load(tmp_path / "m.npz")
    assert type(loaded) is DeepCCA and loaded.train == model.train
    assert isinstance(loaded.train, TrainConfig) and repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    with np.load(tmp_path / "m.npz") as npz:
        meta = json.loads(str(npz["__meta__"][()]))
    assert meta["state_attribute"] == "module_" and "module_" not in meta["fitted"]
    assert meta["state_dict"] == list(model.module_.state_dict())


def _as_earlier_file(path, flat: dict, renames: dict) -> None:
    """The file as the estimator wrote it when it was a torch module (its own state_dict keys)."""
    def old(key):
        for new, was in renames.items():
            key = key.replace(new, was)
        return key

    write_as_earlier_file(path, path, flat, rename=old)


def test_files_of_the_earlier_torch_module_estimators_still_load(tmp_path):
    X, Y = _views()
    flat = {"max_epochs": 2, "batch_size": 256, "lr": 1e-3, "seed": 0, "device": "cpu"}
    model = DeepCCA(hidden=(4,), train=dict(flat)).fit(X, Y)
    model.save(tmp_path / "dcca.npz")
    _as_earlier_file(tmp_path / "dcca.npz", flat, {"encoder_x.": "mlp_x.", "encoder_y.": "mlp_y."})
    loaded = DeepCCA.load(tmp_path / "dcca.npz")
    assert loaded.train == flat
    np.testing.assert_array_equal(loaded.transform(X, Y)[1], model.transform(X, Y)[1])

    views = [X, Y, X[:, :2]]
    multi = DeepMCCA(hidden=(4,), train=dict(flat)).fit(views)
    multi.save(tmp_path / "dmcca.npz")
    _as_earlier_file(tmp_path / "dmcca.npz", flat, {f"encoders.{j}.": f"mlp_{j}." for j in range(3)})
    for a, b in zip(Estimator.load(tmp_path / "dmcca.npz").transform(views), multi.transform(views)):
        np.testing.assert_array_equal(a, b)


def test_dctw_round_trips_its_deep_cca(tmp_path):
    t = np.linspace(0, 1, 30)
    x, y = np.c_[np.sin(6 * t), np.cos(4 * t)], np.tanh(np.c_[np.sin(6 * t ** 1.2), t])
    model = mmalign.DCTW(n_outer=1, epochs_per_step=2, hidden=(4,)).fit([(x, y)])
    assert model.model_.train == {"max_epochs": 2, "batch_size": 512, "lr": 1e-3, "seed": 0,
                                  "device": "cpu"}
    model.save(tmp_path / "dctw.npz")
    loaded = mmalign.Aligner.load(tmp_path / "dctw.npz")
    assert isinstance(loaded.model_, DeepCCA)
    np.testing.assert_array_equal(loaded.align(x, y).path(), model.align(x, y).path())


# ------------------------------------------------------------------------- the one base
def test_one_estimator_base_with_scikit_learn_semantics():
    from sklearn.base import is_classifier
    from sklearn.utils import get_tags

    for est in (mmalign.CCA(), DeepCCA(), DeepMCCA(), mmalign.DTW(), mmalign.KNeighborsDTW()):
        assert isinstance(est, Estimator), est
    assert get_tags(mmalign.CCA()).transformer_tags is not None
    assert get_tags(DeepCCA()).transformer_tags is not None
    assert get_tags(mmalign.DTW()).transformer_tags is None
    assert is_classifier(mmalign.KNeighborsDTW())
    assert issubclass(TorchAligner, mmalign.Aligner) and issubclass(TorchAligner, TorchEstimator)
    assert not issubclass(DeepCCA, mmalign.Aligner) and issubclass(DeepCCA, TransformerMixin)
