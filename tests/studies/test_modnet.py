"""The ModNet study (seed 004, §2.5): change measures, the fooling / λ trade-off / augmentation /
memorisation experiments end to end on a tiny profile, the augmentation classifier, settings errors.

The architecture itself is tested in ``tests/models/test_modnet_model.py``."""

import json

import pytest
import torch

from _toy import MODNET_CLF_KW as CLF_KW, MODNET_TINY as TINY
from ganreport import config, io, train
from ganreport.errors import ConfigError
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
    df2 = modnet.lambda_tradeoff(config.resolve("tiny"), progress=False)  # resumed: same numbers
    assert df2.drop(columns="seconds").equals(df.drop(columns="seconds"))
    plt.close(modnet.plot_tradeoff(df))
    with pytest.warns(UserWarning, match="no DCGAN baseline"):
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
