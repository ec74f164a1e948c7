"""The ModNet study (seed 004, §2.5): change measures, the fooling / λ trade-off / augmentation /
memorisation experiments end to end on a tiny profile, the augmentation classifier, settings errors.

The architecture itself is tested in ``tests/models/test_modnet_model.py``."""

import json

import pandas as pd
import pytest
import torch

from _toy import MODNET_CLF_KW as CLF_KW, MODNET_TINY as TINY
from ganreport import config, io, train
from ganreport.errors import ConfigError, DataError
from ganreport.studies import modnet
from ganreport.studies.modnet import change_stats, train_eval_classifier



def test_change_stats_known_answers():
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    st = change_stats(x, x)
    assert torch.allclose(st["l1"], torch.zeros(3)) and torch.allclose(st["ssim"], torch.ones(3))
    y = x + 0.2 * (x < 0.8)  # +0.1 intensity ([0, 1] units) where it stays in range
    st = change_stats(x, y)
    m = (x < 0.8).flatten(1).float()
    torch.testing.assert_close(st["l1"], 0.1 * m.mean(1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(st["l2"], 0.1 * m.sum(1).sqrt(), rtol=1e-5, atol=1e-6)


def test_experiments_end_to_end(tmp_cache, tmp_path, monkeypatch):
    """Every experiment of ganreport.studies.modnet on a tiny profile: files written, tables well formed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prof_dir = tmp_path / "profiles"
    prof_dir.mkdir()
    (prof_dir / "tiny.yaml").write_text(json.dumps({
        "profile": "tiny", "dataset": "mnist", "seed": 0, "data_seed": 0, "batch_size": 8, "device": "cpu",
        "steps": {"modnet": 3}, "model_kwargs": {"modnet": TINY}, "ckpt_every": 3, "log_every": 1, "grid_every": 3,
        "modnet": {"n_per_pair": 1, "transfer_classifier": {"seed": 1, **CLF_KW}, "lambdas": [1.0, 10.0],
                   "tradeoff_steps": 2, "tradeoff_n": 20, "aug_sizes": [10], "aug_seeds": [0, 1], "aug_steps": 2,
                   "aug_batch": 8, "aug_max_generated": 30, "n_memorization": 20, "n_neighbours": 2},
    }))
    monkeypatch.setattr(config, "PROFILES_DIR", prof_dir)
    with pytest.raises(Exception, match="train the model first"):
        modnet.fooling(config.resolve("tiny"))
    train.train_model("modnet", "mnist", config.resolve("tiny"), progress=False)
    tiny = config.resolve("tiny")
    # the scoring functions never train: the fine-tunes, the transfer classifier and the augmentation
    # classifiers come from notebook 01
    for score in (modnet.fooling, modnet.lambda_tradeoff, modnet.augmentation_experiment):
        with pytest.raises(DataError, match="run notebook 01"):
            score(tiny)
    tuned = modnet.train_lambda_finetunes(tiny, progress=False)
    assert list(tuned["lambda"]) == [1.0, 10.0]
    with pytest.warns(UserWarning, match="no DCGAN baseline"):
        made = modnet.train_augmentation_classifiers(tiny, progress=False)
    assert len(made) == 2 * 2
    pd.testing.assert_frame_equal(modnet.train_augmentation_classifiers(tiny, progress=False), made)  # reused
    ckpts = {p: p.stat().st_mtime_ns for p in config.RUNS_DIR.rglob("*.safetensors")}
    res = modnet.fooling(config.resolve("tiny"))
    k = 10
    assert res.modified.shape == (k, k, 1, 1, 28, 28) and res.l2.shape == (k, k, 1)
    tab = modnet.fooling_table("tiny")
    assert list(tab.index) == ["frozen", "transfer"] and 0 <= tab.loc["frozen", "fooling rate"] <= 1
    assert (modnet.out_dir("tiny") / "fooling.npz").is_file()
    rows = [r for r in io.read_jsonl(config.RUNS_DIR / "tiny" / "metrics.jsonl") if r["section"] == "modnet"]
    assert {r["metric"] for r in rows} >= {"fool_rate", "fool_close_rate", "change_l1", "change_l2", "change_ssim"}
    for fig in (modnet.plot_fooling_grid(res), modnet.plot_fooling_matrix(res)):
        plt.close(fig)
    df = modnet.lambda_tradeoff(config.resolve("tiny"), progress=False)
    assert list(df["lambda"]) == [1.0, 10.0] and df["fool_rate_frozen"].between(0, 1).all()
    df2 = modnet.lambda_tradeoff(config.resolve("tiny"), progress=False)  # scored again: same numbers
    assert df2.drop(columns="score_s").equals(df.drop(columns="score_s"))
    plt.close(modnet.plot_tradeoff(df))
    aug = modnet.augmentation_experiment(config.resolve("tiny"), progress=False)
    assert len(aug) == 2 * 2 and set(aug["method"]) == {"real", "real + modnet"}
    assert set(aug.loc[aug["method"] == "real + modnet", "n_generated"]) == {30}
    table = modnet.augmentation_table("tiny")
    assert table.shape == (1, 2) and "±" in table.iloc[0, 0]
    plt.close(modnet.plot_augmentation(aug))
    mem = modnet.memorization_check(config.resolve("tiny"))
    assert mem.summary.shape[0] == 5 and mem.indices.shape[1] == 2
    # an untrained-looking ModNet (3 steps from the identity) keeps its sources as nearest neighbours
    assert mem.summary.iloc[0]["value"] > 0.9
    plt.close(modnet.plot_memorization(mem))
    assert {p: p.stat().st_mtime_ns for p in config.RUNS_DIR.rglob("*.safetensors")} == ckpts  # scoring trained nothing
    # a stored classifier scores what training and testing it in one go gives (the `real` condition, seed 1)
    from ganreport import data
    from ganreport.studies.modnet.augmentation import _stratified

    tr, te = data.load("mnist", "train"), data.load("mnist", "test")
    idx = _stratified(tr.labels, 10, 10, torch.Generator().manual_seed(1_000 * 1 + 10))
    direct = train_eval_classifier(tr.images[idx], tr.labels[idx], te.images, te.labels, seed=1, steps=2, batch_size=8)
    stored = aug[(aug["n_real"] == 10) & (aug["method"] == "real") & (aug["seed"] == 1)]["accuracy"]
    assert list(stored) == [direct]


def test_train_eval_classifier_is_seeded():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 28, 28, generator=g) * 2 - 1, torch.arange(40) % 10
    a = train_eval_classifier(x, y, x, y, seed=0, steps=3, batch_size=8)
    assert a == train_eval_classifier(x, y, x, y, seed=0, steps=3, batch_size=8) and 0 <= a <= 1
    x32 = torch.rand(20, 3, 32, 32, generator=g) * 2 - 1
    assert 0 <= train_eval_classifier(x32, y[:20], x32, y[:20], seed=1, steps=2, batch_size=4) <= 1


def test_unknown_modnet_setting(tmp_path, tmp_cache, monkeypatch):
    (tmp_path / "bad.yaml").write_text("profile: bad\nmodnet: {n_per_pairs: 3}\n")
    monkeypatch.setattr(config, "PROFILES_DIR", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown key modnet.n_per_pairs \(did you mean n_per_pair\?\)"):
        config.resolve("bad")
