"""The DDM study (ModNet thesis ch. 3, :mod:`ganreport.studies.ddm`): likelihood baselines against
known answers, hypercolumns, the weakened / small DCGAN variants, the analysis helpers, Table 3.1
read from recorded rows, and the end-to-end smoke run."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from _toy import record_quant, tiny_cfg, tiny_data
from ganreport import config, models, train
from ganreport.errors import ConfigError, DataError
from ganreport.metrics import likelihood as L
from ganreport.metrics.base import torch_threads
from ganreport.metrics.features import ClassifierExtractor, hypercolumns
from ganreport.models.classifier import LeNetCNN, SmallCNN
from ganreport.studies import ddm


# ----------------------------------------------------------------------------- Parzen windows
def test_parzen_matches_scipy_gaussian_kde_1d():
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(200, 1))
    x = rng.normal(size=(50, 1)) * 1.5
    h = 0.8  # a wide kernel relative to the unit-variance sample
    kde = gaussian_kde(centers.T, bw_method=h / centers[:, 0].std(ddof=1))  # kernel sd = factor * data sd
    ours = L.parzen_log_likelihood(x, centers, h).numpy()
    np.testing.assert_allclose(ours, kde.logpdf(x.T), rtol=1e-10, atol=1e-10)


def test_parzen_matches_scipy_gaussian_kde_isotropic_3d():
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(1)
    raw = rng.normal(size=(300, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 2.0, 0.5], [0.0, 0.0, 0.7]])
    # whiten exactly so that the sample covariance is I: gaussian_kde's kernel is then h^2 I
    c = raw - raw.mean(0)
    centers = c @ np.linalg.inv(np.linalg.cholesky(np.cov(c.T)).T)
    np.testing.assert_allclose(np.cov(centers.T), np.eye(3), atol=1e-10)
    x = rng.normal(size=(40, 3)) * 2
    h = 1.3
    kde = gaussian_kde(centers.T, bw_method=h)
    np.testing.assert_allclose(L.parzen_log_likelihood(x, centers, h, chunk=7).numpy(), kde.logpdf(x.T),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("h", [0.0, -1.0, float("nan"), float("inf"), "wide"])
def test_parzen_bad_bandwidth(h):
    with pytest.raises(ConfigError, match="bandwidth"):
        L.parzen_log_likelihood(torch.zeros(3, 2), torch.ones(4, 2), h)
    with pytest.raises(ConfigError, match="bandwidth"):
        L.choose_bandwidth(torch.zeros(3, 2), torch.ones(4, 2), grid=[0.5, h])


def test_parzen_bad_inputs():
    with pytest.raises(DataError, match="differ in shape"):
        L.parzen_log_likelihood(torch.zeros(3, 2), torch.ones(4, 3), 1.0)
    with pytest.raises(DataError, match="NaN"):
        L.parzen_log_likelihood(torch.tensor([[float("nan"), 0.0]]), torch.ones(4, 2), 1.0)


def test_choose_bandwidth_maximises_validation_likelihood():
    g = torch.Generator().manual_seed(0)
    centers, val = torch.randn(300, 2, generator=g), torch.randn(200, 2, generator=g)
    h, table = L.choose_bandwidth(val, centers)
    assert list(table.columns) == ["bandwidth", "mean_ll"] and len(table) == 13
    best_grid = table["mean_ll"].max()
    at_h = float(L.parzen_log_likelihood(val, centers, h).mean())
    assert at_h >= best_grid - 1e-12  # the refinement never loses to the grid
    for f in (0.7, 1.4):  # a local maximum
        assert at_h >= float(L.parzen_log_likelihood(val, centers, h * f).mean())
    score = L.parzen_score(val[:50], val[50:], centers)
    assert set(score) == {"ll", "se", "bandwidth", "val_ll"} and score["bandwidth"] > 0


# ----------------------------------------------------------------------------- PCA
def test_pca_95_keeps_the_variance():
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([10.0, 5.0, 3.0] + [0.1] * 7)
    x = torch.randn(500, 10, generator=g) * scales
    p = L.pca_95(x)
    assert p.n_components == 3 and p.explained_ratio >= 0.95
    z = p.transform(x)
    assert z.shape == (500, 3)
    np.testing.assert_allclose(z.var(0).numpy(), p.explained_variance.numpy(), rtol=1e-8)
    assert L.fit_pca(x, n_components=2).n_components == 2


def test_pca_bad_input():
    x = torch.randn(5, 20)
    with pytest.raises(DataError, match="more samples"):
        L.fit_pca(x, n_components=10)  # 5 samples have at most 4 components with variance
    with pytest.raises(DataError, match="at least 2"):
        L.fit_pca(x[:1])
    with pytest.raises(ConfigError, match="variance"):
        L.fit_pca(x, variance=0.0)
    with pytest.raises(ConfigError, match="n_components"):
        L.fit_pca(x, n_components=0)
    with pytest.raises(DataError, match="fitted on 20"):
        L.fit_pca(x).transform(torch.randn(2, 3))


# ----------------------------------------------------------------------------- AIS
def _linear_gaussian(seed=0, d=6, zd=2, n=4):
    g = torch.Generator().manual_seed(seed)
    W = 0.7 * torch.randn(d, zd, generator=g, dtype=torch.float64)
    b = torch.randn(d, generator=g, dtype=torch.float64)
    x = torch.randn(n, zd, generator=g, dtype=torch.float64) @ W.T + b + 0.5 * torch.randn(n, d, generator=g,
                                                                                          dtype=torch.float64)
    return W, b, x


def test_ais_linear_gaussian_matches_closed_form():
    """x = W z + b + σ ε has log p(x) = log N(x; b, W Wᵀ + σ² I); AIS (batched over two σ) recovers it."""
    W, b, x = _linear_gaussian()
    sigmas = [0.5, 1.0]
    with torch_threads(1):  # tiny batches: one thread is fastest on a shared CPU
        res = L.ais_log_likelihood(lambda z: z @ W.T + b, x, sigmas, 2, n_chains=64, n_steps=300, n_leapfrog=10,
                                   seed=3)
    assert res.log_px.shape == (2, 4) and res.log_w.shape == (2, 4, 64)
    for i, s in enumerate(sigmas):
        exact = L.linear_gaussian_log_px(x, W, b, s)
        err = (res.log_px[i] - exact).abs()
        assert float(err.mean()) < 0.1 and float(err.max()) < 0.25, (s, err)
    assert ((res.accept > 0.4) & (res.accept < 0.95)).all()


def test_ais_is_seeded_and_a_lower_estimate_with_few_steps():
    W, b, x = _linear_gaussian(1)
    run = lambda seed, steps: L.ais_log_likelihood(lambda z: z @ W.T + b, x, 0.5, 2, n_chains=8, n_steps=steps,
                                                   n_leapfrog=3, seed=seed)
    a, a2 = run(0, 20), run(0, 20)
    assert torch.equal(a.log_px, a2.log_px)
    assert not torch.equal(a.log_px, run(1, 20).log_px)
    # Jensen: E[log p̂] <= log p; a crude annealing sits clearly below the exact value on average
    assert float((a.log_px[0] - L.linear_gaussian_log_px(x, W, b, 0.5)).mean()) < 0


@pytest.mark.parametrize("kw,match", [(dict(sigmas=0.0), "sigma must be > 0"), (dict(sigmas=[0.1, -1.0]), "sigma"),
                                      (dict(n_steps=0), "n_steps"), (dict(n_chains=0), "n_chains"),
                                      (dict(step_size=0.0), "step_size")])
def test_ais_bad_input(kw, match):
    W, b, x = _linear_gaussian()
    args = dict(sigmas=0.5, n_steps=2, n_chains=2)
    args.update(kw)
    with pytest.raises(ConfigError, match=match):
        L.ais_log_likelihood(lambda z: z @ W.T + b, x, z_dim=2, **args)


def test_sigmoid_schedule():
    b = L.sigmoid_schedule(50)
    assert len(b) == 51 and b[0] == 0 and b[-1] == 1 and bool((b.diff() > 0).all())
    with pytest.raises(ConfigError):
        L.sigmoid_schedule(0)


def test_ais_on_a_dcgan_generator_runs():
    G, _, _ = models.build("dcgan", (1, 28, 28), g_width=4, d_width=4, z_dim=8)
    G.eval().requires_grad_(False)
    x = torch.rand(2, 784, generator=torch.Generator().manual_seed(0))
    res = L.ais_log_likelihood(L.gan_decoder(G), x, [0.1, 0.3], 8, n_chains=2, n_steps=5, n_leapfrog=2)
    assert res.log_px.shape == (2, 2) and torch.isfinite(res.log_px).all()


# ----------------------------------------------------------------------------- hypercolumns
@pytest.mark.parametrize("arch", [SmallCNN, LeNetCNN])
def test_hypercolumn_shape(arch):
    torch.manual_seed(0)
    ext = ClassifierExtractor(arch((1, 28, 28), 10, width=4, prelogit_dim=8).eval(), {"cache_key": "test"})
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert hypercolumns(ext, x).shape == (5, 4 + 8 + 8 + 10)
    assert hypercolumns(ext, x, grid=2).shape == (5, 4 * 4 + 8 * 4 + 8 + 10)
    assert hypercolumns(ext, x, layers=("block2",), grid=3).shape == (5, 8 * 9)
    assert torch.allclose(hypercolumns(ext, x, batch_size=2), hypercolumns(ext, x), atol=1e-6)
    with pytest.raises(ConfigError, match="grid"):
        hypercolumns(ext, x, grid=0)
    with pytest.raises(ConfigError, match="exceeds"):
        hypercolumns(ext, x, layers=("block2",), grid=8)  # block2 is 7x7
    with pytest.raises(ConfigError, match="unknown classifier layer"):
        hypercolumns(ext, x, layers=("block9",))


# ----------------------------------------------------------------------------- DCGAN variants
def test_variants_differ_from_dcgan_as_described():
    shape = (1, 28, 28)
    kw = dict(g_width=4, d_width=4, z_dim=8)
    G, D, _ = models.build("dcgan", shape, **kw)
    Gw, Dw, _ = models.build("dcgan_weak", shape, **kw)
    Gs, Ds, _ = models.build("dcgan_small", shape, **kw)
    has_bn = lambda m: any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    assert has_bn(G) and not has_bn(Gw) and has_bn(Gs)  # weakened: no BatchNorm in G
    assert has_bn(Dw) and has_bn(Ds)  # ... and the same discriminator as dcgan
    assert [type(m) for m in D.modules()] == [type(m) for m in Dw.modules()] == [type(m) for m in Ds.modules()]
    assert list(G.layers()) == ["fc", "up1", "out"] and list(Gw.layers()) == ["fc", "up1", "out"]
    assert list(Gs.layers()) == ["fc", "out"]  # small: one layer fewer
    assert len(models.build("dcgan_small", (3, 32, 32), **kw)[0].layers()) == len(
        models.build("dcgan", (3, 32, 32), **kw)[0].layers()) - 1
    for g in (Gw, Gs):
        z = g.sample_z(3, torch.Generator().manual_seed(0))
        assert g(z).shape == (3, *shape)
    assert models.MODELS.get("dcgan_weak").base == models.MODELS.get("dcgan_small").base == "dcgan"
    with pytest.raises(ConfigError, match="no parameter 'batchnorm'"):
        models.build("dcgan_weak", shape, batchnorm=True)


def test_variants_inherit_dcgan_profile_kwargs():
    mk = {"dcgan": {"g_width": 8, "d_width": 8, "z_dim": 32, "batchnorm": True, "depth": None}}
    assert models.profile_kwargs("dcgan_weak", mk) == {"g_width": 8, "d_width": 8, "z_dim": 32}
    assert models.profile_kwargs("dcgan_small", {**mk, "dcgan_small": {"g_width": 2}}) == {"g_width": 2}
    assert models.profile_kwargs("stylegan", mk) == {}
    assert models.profile_kwargs("dcgan", mk) == mk["dcgan"]


@pytest.mark.parametrize("name", ["dcgan_weak", "dcgan_small"])
def test_variants_train_a_few_steps(tmp_path, name):
    calls = []
    t = train.Trainer(name, tiny_data(32), tmp_path / name, tiny_cfg(4, 8, 4, 100), g_width=4, d_width=4, z_dim=8)
    t.add_callback(lambda tr, step: calls.append(step) or {"x": step}, 2)
    res = t.fit(progress=False)
    assert res.steps == 4 and calls == [2, 4] and res.checkpoint is not None
    G, meta = train.load_generator(tmp_path / name)
    assert meta["model"] == name and G(torch.randn(2, 8)).shape == (2, 1, 28, 28)


# ----------------------------------------------------------------------------- analysis helpers
def _over_training_frame(order=("dcgan", "dcgan_small", "dcgan_weak")):
    rows = []
    for rank, m in enumerate(order):
        for step in (10, 20):
            for feat in ("logits", "prelogits"):
                v = (rank + 1) * 10.0 / step * (2 if feat == "prelogits" else 1)
                rows.append(dict(model=m, step=step, metric="ddm", feature=feat, value=v, ci_low=v - 0.01,
                                 ci_high=v + 0.01))
            rows.append(dict(model=m, step=step, metric="fid", feature="prelogits", value=rank + 1.0 / step,
                             ci_low=None, ci_high=None))
            rows.append(dict(model=m, step=step, metric="parzen_ll", feature="pixels", value=float(rank),
                             ci_low=None, ci_high=None))
    rows.append(dict(model="real_train", step=None, metric="ddm", feature="logits", value=0.1, ci_low=0, ci_high=0.2))
    return pd.DataFrame(rows)


def test_ranking_verdicts():
    df = _over_training_frame()
    assert ddm.final_values(df) == {"dcgan": 0.5, "dcgan_small": 1.0, "dcgan_weak": 1.5}
    v = ddm.verdict_ranking(df)
    assert "Agrees with the thesis (DCGAN best" in v and "still falling" in v  # 1.0 -> 0.5 between evaluations
    assert "baseline 0.1" in ddm.verdict_ranking(df)
    rev = _over_training_frame(("dcgan_weak", "dcgan_small", "dcgan"))
    assert "Disagrees" in ddm.verdict_ranking(rev)
    lik = ddm.verdict_likelihoods(df)  # Parzen here prefers the weakened model, as in the thesis
    assert "preferring the weakened DCGAN" in lik and "Parzen: agrees with the thesis" in lik
    assert "AIS: inconclusive" in lik
    assert ddm.tracking_tau(df, "parzen_ll", "pixels") < -0.5  # Parzen improves where DDM worsens


def test_embedding_agreement_kendall():
    tab = ddm.embedding_agreement(_over_training_frame(), ["logits", "prelogits"])
    assert len(tab) == 1
    r = tab.iloc[0]
    assert r.tau_points == pytest.approx(1.0) and r.tau_final == pytest.approx(1.0) and r.same_order
    assert r.n_points == 6
    assert "Agrees" in ddm.verdict_agreement(tab)


def test_saturation_and_modes_verdict():
    rows = []
    for n in (10, 20, 100, 1000):
        for r in range(3):
            rows.append(dict(n=n, repeat=r, set_size=1000, replication=1000 / n, metric="is",
                             value=min(n, 100) / 10.0 + 0.001 * r))
            rows.append(dict(n=n, repeat=r, set_size=1000, replication=1000 / n, metric="ddm",
                             value=10 - math.log10(n) + 0.001 * r))
    df = pd.DataFrame(rows)
    assert ddm.saturation(df) == {"ddm": 1000, "is": 100}
    s = ddm.modes_summary(df)
    assert set(s.columns) >= {"metric", "n", "mean", "std"}
    assert "Agrees with the thesis: IS saturates at n = 100" in ddm.verdict_missing_modes(df)


def test_corruptions_and_slopes():
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    for kind in ("gaussian", "uniform"):
        y = ddm.corrupt(x, kind, 0.05, seed=0)
        assert torch.equal(y, ddm.corrupt(x, kind, 0.05, seed=0)) and y.abs().max() <= 1
        # the added noise has standard deviation σ in [0, 1] units (2σ in [-1, 1] units) before clipping
        z = ddm.corrupt(torch.zeros(200, 1, 28, 28), kind, 0.05, seed=1)
        assert float((z / 2).std()) == pytest.approx(0.05, rel=0.05)
    assert torch.equal(ddm.corrupt(x, "blur", 0.0), x)
    with pytest.raises(ConfigError):
        ddm.corrupt(x, "jpeg", 1.0)
    with pytest.raises(ConfigError):
        ddm.corrupt(x, "blur", -1.0)
    df = pd.DataFrame(dict(corruption=["blur"] * 3, sigma=[0.0, 1.0, 2.0], ddm=[1.0, 1.0 + math.log(2), 1 + 2 * math.log(2)]))
    sl = ddm.corruption_slopes(df).iloc[0]
    assert sl.bits_per_sigma == pytest.approx(1.0) and sl.monotone


def test_settings_validation():
    s = ddm.resolve_settings({"steps": 20, "every": 10, "ais": {"sigmas": [0.1]}})
    assert s["steps"] == 20 and s["ais"]["sigmas"] == [0.1] and s["ais"]["n_chains"] == ddm.STUDY_DEFAULTS["ais"]["n_chains"]
    with pytest.raises(ConfigError, match="unknown ddm_study setting"):
        ddm.resolve_settings({"stepz": 3})
    with pytest.raises(ConfigError, match="unknown ddm_study.ais"):
        ddm.resolve_settings({"ais": {"sigma": 0.1}})
    with pytest.raises(ConfigError, match="sigmas must all be > 0"):
        ddm.resolve_settings({"ais": {"sigmas": [0.1, 0.0]}})
    with pytest.raises(ConfigError, match="exceeds steps"):
        ddm.resolve_settings({"steps": 5, "every": 10})
    blocks = [config.profile_params(p)["ddm_study"] for p in config.PROFILES]
    for b in blocks:
        ddm.resolve_settings(b)
        assert b.keys() == blocks[0].keys()
        assert {k: set(v) for k, v in b.items() if isinstance(v, dict) and k != "model_kwargs"} == \
            {k: set(v) for k, v in blocks[0].items() if isinstance(v, dict) and k != "model_kwargs"}
        assert b["classifiers"] and all(set(c) == set(blocks[0]["classifiers"][0]) for c in b["classifiers"])
        assert all(set(c) <= set(ddm.CLASSIFIER_TRAIN_DEFAULTS) for c in b["classifiers"])


# ----------------------------------------------------------------------------- end to end (smoke profile)
def test_run_ddm_study_smoke(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    smoke = config.resolve("smoke")
    with pytest.raises(DataError, match="run notebook 01"):  # scoring never trains
        ddm.run_ddm_study(smoke, progress=False)
    trained = ddm.train_ddm_study(smoke, progress=False)
    st = ddm.settings(smoke)
    assert list(trained.loc[trained["kind"] == "DCGAN variant", "name"]) == list(st["models"])
    assert (trained["kind"] == "embedding network").sum() == 1 + len(st["classifiers"])
    ckpts = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.safetensors")}
    assert ckpts
    res = ddm.run_ddm_study(smoke, progress=False)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.safetensors")} == ckpts  # nothing retrained
    out = tmp_path / "runs" / "smoke" / "ddm_study"
    for f in ("classifiers.json", "over_training.json", "ais.json", "agreement.json", "missing_modes.json",
              "corruptions.json", "summary.json"):
        assert (out / f).is_file(), f
    ot = res["over_training"]
    steps = set(range(st["every"], st["steps"] + 1, st["every"]))
    for m in st["models"]:
        assert set(ot.loc[ot["model"] == m, "step"]) == steps
    assert {"ddm", "fid", "is", "parzen_ll"} <= set(ot["metric"])
    assert {"logits", "prelogits", "hypercolumns", "pixels", "pca95"} <= set(ot["feature"])
    assert (ot["model"] == "real_train").any()
    assert set(res["ais"]["sigma"]) == set(st["ais"]["sigmas"])
    assert set(res["verdicts"]) == {"ranking", "likelihoods", "embeddings", "networks", "missing_modes", "corruptions"}
    for v in res["verdicts"].values():
        assert isinstance(v, str) and any(w in v for w in ("Agrees", "agrees", "Disagrees", "Inconclusive"))
    for fig in (ddm.plot_over_training(ot), ddm.plot_likelihoods(ot, res["ais"]),
                ddm.plot_embeddings(ot), ddm.plot_networks(ot, list(res["classifiers"]["name"])),
                ddm.plot_missing_modes(res["missing_modes"]), ddm.plot_corruptions(res["corruptions"])):
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
        import matplotlib.pyplot as plt

        plt.close(fig)
    again = ddm.run_ddm_study(config.resolve("smoke"), progress=False)  # everything is on disk now
    assert again["seconds"]["over_training"] < res["seconds"]["over_training"]
    pd.testing.assert_frame_equal(again["missing_modes"], res["missing_modes"])
    loaded = ddm.load_ddm_study("smoke")
    assert loaded["verdicts"] == again["verdicts"]


def test_ddm_table_and_verdict(tmp_path):
    record_quant(tmp_path)
    table = ddm.ddm_table("t", root=tmp_path)
    assert list(table.index) == ["real_train", "real_test", "a", "c", "b"]
    assert table.loc["real_train", "role"].startswith("training set") and table.loc["a", "role"] == "architecture"
    assert table.loc["b", "rank_ddm"] == 5 and table.loc["c", "rank_is"] == 3 and table.loc["c", "rank_fid"] == 3
    assert table.loc["a", "ddm_ci_low"] == 19.0 and table.loc["a", "n"] == 100
    modes = pd.DataFrame({"experiment": ["distinct"] * 6, "k": [10, 100, 1000] * 2, "metric": ["is"] * 3 + ["ddm"] * 3,
                          "value": [5.0, 9.0, 9.05, 40.0, 30.0, 25.0], "ci_low": np.nan, "ci_high": np.nan,
                          "direction": ["higher"] * 3 + ["lower"] * 3})
    text = ddm.verdict_ddm(table, modes)
    assert text.startswith("Agrees"), text
    assert "the lowest DDM is real_train (10" in text and "a 20, c 22, b 25" in text
    r = stats.spearmanr([20, 22, 25], [100, 90, 150]).statistic
    assert f"Spearman ρ = {r:.2f}" in text and "from n = 100" in text and "improves by 20 %" in text
    flat = modes.copy()
    flat.loc[flat["metric"] == "ddm", "value"] = [40.0, 30.0, 30.0]
    assert ddm.verdict_ddm(table, flat).startswith("Disagrees")
    fig = ddm.plot_ddm(table, modes)
    assert len(fig.axes) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)
    assert ddm.ddm_table("empty", root=tmp_path).empty
