"""Feature extractors: classifier training/caching, batch-size independence, pixels, Inception
from a local weight file, cached real-data statistics, and the validation helpers."""

from __future__ import annotations

import pytest
import torch

from ganreport.errors import ConfigError, DataError
from ganreport.metrics import features as F
from ganreport.metrics import validate

SMALL = dict(data_kw={"sizes": (600, 100, 400)}, epochs=6, width=8, prelogit_dim=32, progress=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def clf(cache):
    return F.get_extractor("classifier", cache_dir=cache, **SMALL)


def test_classifier_learns_and_is_cached(clf, cache):
    assert clf.test_accuracy > 0.6  # 10 classes: chance is 0.1 (the full setting reaches >= 0.98)
    files = list((cache / "classifier").glob("mnist_*.safetensors"))
    assert len(files) == 1 and files[0].with_suffix(".json").is_file(), "classifier weights were not cached"
    again = F.get_extractor("classifier", cache_dir=cache, **SMALL)
    assert again.meta["train_seconds"] == clf.meta["train_seconds"]  # loaded, not retrained
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(again(x)["logits"], clf(x)["logits"])


def test_classifier_training_is_deterministic(tmp_path):
    kw = dict(SMALL, epochs=1, data_kw={"sizes": (200, 50, 100)})
    kw.pop("progress")
    a, _ = F.train_classifier("mnist", progress=False, **kw)
    b, _ = F.train_classifier("mnist", progress=False, **kw)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_classifier_trains_when_called_under_no_grad():
    """A tracking callback runs under no_grad and may be the first to need the (uncached) classifier."""
    kw = dict(SMALL, epochs=1, data_kw={"sizes": (200, 50, 100)})
    kw.pop("progress")
    with torch.no_grad():
        model, meta = F.train_classifier("mnist", progress=False, **kw)
    assert meta["test_accuracy"] > 0.1 and all(p.grad is None or p.grad.abs().sum() > 0 for p in model.parameters())


def test_extract_is_independent_of_batch_size(clf):
    x = torch.rand(37, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    a = F.extract(clf, x, batch_size=37)
    b = F.extract(clf, x, batch_size=5)
    assert a["prelogits"].shape == (37, 32) and a["logits"].shape == (37, 10)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-5), k
    acts = clf.activations(x[:4], ["block1", "block2"])
    assert acts["block1"].shape == (4, 8, 14, 14) and acts["block2"].shape == (4, 16, 7, 7)
    with pytest.raises(ConfigError, match="unknown classifier layer"):
        clf.activations(x[:2], ["conv9"])


def test_pixels_and_bad_images():
    ext = F.get_extractor("pixels")
    x = torch.rand(3, 1, 4, 4)
    assert torch.equal(F.extract(ext, x)["pixels"], x.reshape(3, 16))
    with pytest.raises(DataError, match="empty"):
        F.extract(ext, torch.zeros(0, 1, 4, 4))
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        F.extract(ext, torch.zeros(3, 16))
    with pytest.raises(ConfigError, match="unknown feature extractor"):
        F.get_extractor("vgg")


def test_inception_needs_a_weight_file(tmp_path):
    with pytest.raises(ConfigError, match="inception_weights"):
        F.get_extractor("inception")
    with pytest.raises(ConfigError, match="does not exist"):
        F.get_extractor("inception", weights=tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(ConfigError, match="not a torchvision inception_v3"):
        F.get_extractor("inception", weights=bad)


def test_inception_from_random_weight_file(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import inception_v3

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=10)
    path = tmp_path / "inception_random.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    ext = F.get_extractor("inception", weights=path, size=75)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
    out = F.extract(ext, x, batch_size=2)
    assert out["pool"].shape == (3, 2048) and out["logits"].shape == (3, 10)
    assert torch.isfinite(out["pool"]).all()
    single = F.extract(ext, x[:1])
    assert torch.allclose(single["pool"], out["pool"][:1], atol=1e-4)


def test_real_features_and_stats_are_cached(tmp_path):
    ext = F.get_extractor("pixels")
    feats = F.real_features(ext, "digits", "test", cache_dir=tmp_path)
    files = sorted((tmp_path / "features").glob("*.safetensors"))
    assert len(files) == 1
    stats = F.real_stats(ext, "digits", "test", cache_dir=tmp_path)
    ref = F.feature_stats(feats["pixels"])
    assert torch.allclose(stats["mu"], ref["mu"]) and torch.allclose(stats["cov"], ref["cov"])
    assert torch.allclose(stats["cov"], torch.cov(feats["pixels"].double().T), atol=1e-10)
    again = F.real_features(ext, "digits", "test", cache_dir=tmp_path)
    assert torch.equal(again["pixels"], feats["pixels"])
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 2  # features + stats


# --------------------------------------------------------------------------- validation helpers
def test_corruptions_and_replication():
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    for kind, levels in validate.LADDER.items():
        assert torch.equal(validate.corrupt(x, kind, 0.0), x)
        prev = 0.0
        for s in levels[1:]:
            err = float((validate.corrupt(x, kind, s, seed=1) - x).abs().mean())
            assert err >= prev - 1e-6, (kind, s)  # more strength changes the images more
            prev = err
    const = torch.full((2, 1, 9, 9), 0.3)
    assert torch.allclose(validate.gaussian_blur(const, 1.0), const, atol=1e-6)  # blur keeps constants
    r = validate.replicate(len(x), 2, 7, seed=0)
    assert len(r) == 7 and len(set(r.tolist())) == 2
    with pytest.raises(ConfigError, match="unknown corruption"):
        validate.corrupt(x, "jpeg", 0.5)


def test_ladder_summary_detects_monotone_metrics():
    import pandas as pd

    rows = []
    for i, s in enumerate((0, 1, 2, 3)):
        rows += [dict(metric="good", corruption="noise", level=i, strength=s, value=float(s), direction="lower"),
                 dict(metric="higher_good", corruption="noise", level=i, strength=s, value=-float(s) ** 2,
                      direction="higher"),
                 dict(metric="bad", corruption="noise", level=i, strength=s, value=float((s - 1.5) ** 2),
                      direction="lower"),
                 dict(metric="flat", corruption="noise", level=i, strength=s, value=1.0, direction="lower"),
                 dict(metric="saturating", corruption="noise", level=i, strength=s, value=min(s, 2.0),
                      direction="lower")]
    summ = validate.ladder_summary(pd.DataFrame(rows)).set_index("metric")
    assert summ.loc["good", "monotone"] and summ.loc["higher_good", "monotone"]
    assert summ.loc["good", "strict"] and summ.loc["good", "rho"] == pytest.approx(1.0)
    assert summ.loc["saturating", "monotone"] and not summ.loc["saturating", "strict"]
    assert not summ.loc["bad", "monotone"] and not summ.loc["flat", "monotone"]
    assert validate.ladder_table(summ.reset_index()).loc["good", "monotone (all)"]


def test_missing_modes_is_saturates_while_ddm_moves():
    """IS only sees class predictions: replicated sets covering all classes max it out."""
    from ganreport.metrics import compute

    g = torch.Generator().manual_seed(4)
    centres = torch.randn(10, 6, generator=g) * 6
    labels = torch.arange(2000) % 10
    feats = centres[labels] + torch.randn(2000, 6, generator=g)
    test = centres[torch.arange(1000) % 10] + torch.randn(1000, 6, generator=g)

    def score(s, _feats):  # features of the set double as "logits" (nearest-centre classes)
        logits = -torch.cdist(s, centres) ** 2
        return {"is": compute("is", None, logits, splits=1),
                "ddm": compute("ddm", test, s, n_boot=0)}

    df = validate.missing_modes(feats, labels, score, size=1000, classes=(1, 10), distinct=(10, 100, 1000))
    v = df.set_index(["experiment", "k", "metric"])["value"]
    assert v["classes", 1, "is"] < 1.5 < 9 < v["classes", 10, "is"]
    assert v["distinct", 100, "is"] == pytest.approx(v["distinct", 1000, "is"], rel=0.1)  # saturated
    assert v["distinct", 10, "ddm"] > v["distinct", 100, "ddm"] > v["distinct", 1000, "ddm"]  # keeps moving
    summ = validate.modes_summary(df, tol=0.1)
    assert summ[["classes_monotone", "distinct_monotone"]].all().all()
    assert summ.loc["is", "saturates_at"] == 100 and not summ.loc["is", "resolves_last_step"]  # no CI: splits=1


def test_evaluate_samples_gives_every_metric_as_rows(mnist_train):
    from torch import nn

    from ganreport.metrics import suite as evaluate
    from ganreport.results import FIELDS

    ext = F.get_extractor("pixels")
    imgs = mnist_train.images[torch.randperm(len(mnist_train), generator=torch.Generator().manual_seed(5))]
    real, fake, train = imgs[:60], imgs[60:120], imgs[120:200]
    critic = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 1))
    res = evaluate.evaluate_samples(fake, real, ext, train=train, critic=critic, options=evaluate.FAST_OPTIONS)
    assert set(res) == set(evaluate.ALL_METRICS) - {"is"}  # pixels have no class logits
    assert res["memorization"].extra["feature"] == "pixels" and res["critic_gap"].extra["feature"] == "critic"
    rows = evaluate.rows_from(res, "toy", profile="smoke", dataset="mnist", step=3)
    assert len(rows) == len(res) and all(set(FIELDS) <= set(r) for r in rows)
    table = evaluate.results_table(rows)
    assert table.shape == (len(res), 1)
    with pytest.raises(ConfigError, match="unknown metric"):
        evaluate.evaluate_samples(fake, real, ext, metrics=["fid", "nope"])


def test_a_retrained_classifier_never_reads_stale_features(tmp_path):
    """The feature cache is keyed on the weights: after a retrain that changes them (e.g. another
    thread count; here the weights are perturbed and saved under the same settings), the real
    features are computed again. Before #35 the cache was keyed on the settings only, and FID
    between identical images through the stale cache was 0.376."""
    from ganreport import io
    from ganreport.metrics import features as feats_mod

    kw = dict(dataset="mnist", cache_dir=tmp_path, progress=False, epochs=1, width=4)
    ext = feats_mod.classifier(**kw)
    cached = feats_mod.real_features(ext, "mnist", "test", cache_dir=tmp_path)
    path = next((tmp_path / "classifier").glob("*.safetensors"))
    tensors, meta = io.load_checkpoint(path)
    io.save_checkpoint(path, {k: v + 0.05 if v.is_floating_point() else v for k, v in tensors.items()}, meta)
    retrained = feats_mod.classifier(**kw)
    assert retrained.key != ext.key and retrained.meta["cache_key"] == ext.meta["cache_key"]
    fresh = feats_mod.real_features(retrained, "mnist", "test", cache_dir=tmp_path)
    direct = feats_mod.extract(retrained, feats_mod.data_mod.load("mnist", "test").images)
    assert torch.equal(fresh["prelogits"], direct["prelogits"])
    assert not torch.equal(fresh["prelogits"], cached["prelogits"])
