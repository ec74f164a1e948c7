"""The critic studies of seed 001 (:mod:`ganreport.studies.critic`): the metric tracker, the capacity
grid, LIME across critics and their verdicts — checked on tiny models and small synthetic frames."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from _toy import tiny_cfg, tiny_data
from ganreport import config, train
from ganreport.train import tracking
from ganreport.errors import ConfigError, DataError
from ganreport.metrics import compute
from ganreport.metrics.features import ClassifierExtractor, extract
from ganreport.models import build, count_params
from ganreport.models.classifier import SmallCNN
from ganreport.studies import critic as E
from ganreport.studies.verdict_text import _fmt

SMALL = {"dcgan": dict(g_width=4, d_width=4, z_dim=8), "wgan_gp": dict(g_width=4, d_width=4, z_dim=8, n_critic=2)}


@pytest.fixture(scope="module")
def extractor():
    torch.manual_seed(0)
    return ClassifierExtractor(SmallCNN((1, 28, 28), 10, width=4, prelogit_dim=8).eval(), {"cache_key": "test"})


@pytest.fixture(scope="module")
def real():
    return tiny_data(48, seed=7).images


def tracker(extractor, real, **kw):
    return tracking.MetricTracker(extractor, real, n=kw.pop("n", 16), ref_n=kw.pop("ref_n", 24), seed=3,
                                  kid_subsets=3, **kw)


def state(t):
    sd = {f"G.{k}": v.clone() for k, v in t.G.state_dict().items()}
    sd.update({f"D.{k}": v.clone() for k, v in t.D.state_dict().items()})
    return sd


# ----------------------------------------------------------------------------- tracker
@pytest.mark.parametrize("model", ["dcgan", "wgan_gp"])
def test_tracker_leaves_training_unchanged(tmp_path, extractor, real, model):
    data = tiny_data(32)
    cfg = tiny_cfg(6, 8, 6, 6)
    plain = train.Trainer(model, data, tmp_path / "plain", cfg, **SMALL[model])
    plain.fit(progress=False)
    tracked = train.Trainer(model, data, tmp_path / "tracked", cfg, **SMALL[model])
    tracked.add_callback(tracker(extractor, real), 2)
    tracked.fit(progress=False)
    a, b = state(plain), state(tracked)  # BatchNorm running statistics included (dcgan)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(plain.rng.get_state(), tracked.rng.get_state())
    rows = tracking.read_tracking(tmp_path / "tracked")
    assert list(rows["step"]) == [2, 4, 6]
    assert {"fid", "fid_ref", "kid", "is", "ddm", "critic_gap", "critic_offset", "confidence", "sharpness_gap"} <= set(rows)
    assert not (tmp_path / "plain" / "callbacks.jsonl").exists()


def test_tracker_is_deterministic_and_restores_state(extractor, real):
    G, D, _ = build("dcgan", (1, 28, 28), **SMALL["dcgan"])
    G.train()
    D.eval()
    t = tracker(extractor, real)
    before = torch.random.get_rng_state()
    a = t.evaluate(G, D)
    assert torch.equal(before, torch.random.get_rng_state())
    assert G.training and not D.training  # modes restored as they were
    b = tracker(extractor, real).evaluate(G, D)
    a.pop("tracker_s"), b.pop("tracker_s")
    assert a == b
    assert torch.get_num_threads() >= 1


def test_tracker_values_equal_library_metrics(extractor, real):
    G, D, _ = build("wgan_gp", (1, 28, 28), **SMALL["wgan_gp"])
    G.eval()
    D.eval()
    t = tracker(extractor, real, n=20, ref_n=30)
    out = t.evaluate(G, D)
    fake = train.sample(G, 20, seed=3)
    ff, rf = extract(extractor, fake), extract(extractor, real)
    assert out["fid"] == pytest.approx(compute("fid", rf["prelogits"], ff["prelogits"]).value, rel=1e-9)
    ref = extract(extractor, train.sample(G, 30, seed=4))["prelogits"]
    assert out["fid_ref"] == pytest.approx(compute("fid", rf["prelogits"], ref).value, rel=1e-9)
    assert out["kid"] == pytest.approx(compute("kid", rf["prelogits"], ff["prelogits"], seed=3, num_subsets=3,
                                               subset_size=20).value, rel=1e-9)
    assert out["is"] == pytest.approx(compute("is", None, ff["logits"], seed=3, splits=1).value, rel=1e-9)
    assert out["ddm"] == pytest.approx(compute("ddm", rf["logits"], ff["logits"]).value, rel=1e-9)
    idx = torch.randperm(len(real), generator=torch.Generator().manual_seed(3))[:20]
    with torch.no_grad():
        dr, df = D(real[idx]).double(), D(fake).double()
    assert out["critic_gap"] == pytest.approx(compute("critic_gap", dr, df, n_boot=0).value, rel=1e-6)
    assert out["critic_offset"] == pytest.approx(compute("critic_offset", dr, df, n_boot=0).value, rel=1e-6, abs=1e-9)


def test_tracker_errors_and_read_tracking_empty(tmp_path, extractor, real):
    with pytest.raises(ConfigError, match="unknown tracked metric"):
        tracking.MetricTracker(extractor, real, metrics=["fid", "nope"])
    with pytest.raises(ConfigError, match="n >= 2"):
        tracking.MetricTracker(extractor, real, n=1)
    df = tracking.read_tracking(tmp_path)
    assert list(df.columns) == ["step"] and df.empty


def test_read_tracking_after_resume(tmp_path, extractor, real):
    data = tiny_data(32)
    t = train.Trainer("wgan_gp", data, tmp_path, tiny_cfg(4, 8, 2, 4), **SMALL["wgan_gp"])
    t.add_callback(tracker(extractor, real, metrics=["fid", "critic"]), 2)
    t.fit(progress=False)
    t2 = train.Trainer("wgan_gp", data, tmp_path, tiny_cfg(6, 8, 2, 6), **SMALL["wgan_gp"])
    t2.add_callback(tracker(extractor, real, metrics=["fid", "critic"]), 2)
    t2.fit(progress=False)
    df = tracking.read_tracking(tmp_path)
    assert list(df["step"]) == [2, 4, 6] and "kid" not in df


def test_tracking_callbacks_from_profile():
    cbs = tracking.tracking_callbacks(config.resolve("smoke"), "wgan_gp")
    s = tracking.tracking_settings(config.resolve("smoke"))
    assert len(cbs) == 1 and isinstance(cbs[0][0], tracking.MetricTracker)
    steps = config.resolve("smoke").steps["wgan_gp"]
    assert cbs[0][1] == (s["every"] or math.ceil(steps / s["points"]))
    assert cbs[0][0].n == s["n"] and cbs[0][0].ref_n == s["ref_n"]
    assert tracking.tracking_callbacks(config.resolve("smoke"), "dcgan") == []
    assert tracking.tracking_callbacks(config.resolve("smoke"), "wgan_gp", settings={"enabled": False}) == []
    assert tracking.tracking_callbacks(config.resolve("smoke"), "wgan_gp", steps=100, settings={"every": 7})[0][1] == 7
    assert tracking.tracking_every(10, points=3) == 4
    with pytest.raises(ConfigError):
        tracking.tracking_every(10)


# ----------------------------------------------------------------------------- capacity grid
def test_grid_cells_have_requested_parameter_ratios():
    plan = E.grid_plan([4, 8], [0.25, 0.5, 1.0, 2.0], (1, 28, 28), z_dim=16)
    assert len(plan) == 8
    assert (abs(plan["ratio"] / plan["ratio_requested"] - 1) < 0.08).all(), plan
    for r in plan.itertuples(index=False):
        G, D, _ = build("wgan_gp", (1, 28, 28), g_width=r.g_width, d_width=r.d_width, z_dim=16)
        assert (count_params(G), count_params(D)) == (r.g_params, r.d_params)
        target = r.ratio_requested * r.g_params
        for w in (r.d_width - 1, r.d_width + 1):  # the chosen width is the closest one
            other = E.critic_params("wgan_gp", (1, 28, 28), w, z_dim=16)
            assert abs(math.log(r.d_params / target)) <= abs(math.log(other / target)) + 1e-12
    with pytest.raises(ConfigError):
        E.critic_width_for_ratio("wgan_gp", (1, 28, 28), 1000, 0.0)


def test_train_step_flops_counts_every_update():
    data = tiny_data(16)
    a = E.train_step_flops("wgan_gp", data, 4, g_width=4, d_width=8, z_dim=8, n_critic=2)
    b = E.train_step_flops("wgan_gp", data, 8, g_width=4, d_width=8, z_dim=8, n_critic=2)
    c = E.train_step_flops("wgan_gp", data, 4, g_width=4, d_width=8, z_dim=8, n_critic=4)
    assert a["total"] == a["critic"] + a["generator"] > 0
    assert b["total"] == pytest.approx(2 * a["total"], rel=1e-9)  # linear in the batch
    assert c["critic"] == pytest.approx(2 * a["critic"], rel=1e-9) and c["generator"] == a["generator"]
    assert 0.5 < a["critic_share"] < 1
    full = E.train_step_flops("wgan_gp", data, 8, probe_batch=None, g_width=4, d_width=8, z_dim=8, n_critic=2)
    assert full["total"] == b["total"]  # the probe batch scales exactly


def test_capacity_grid_and_lime_across_critics(tmp_path, monkeypatch, extractor, real):
    made = []

    def fake_tracker(*args, **kw):
        t = tracking.MetricTracker(extractor, real, n=kw.get("n", 16), ref_n=0, seed=kw.get("seed", 0), kid_subsets=2)
        made.append(t)
        return t

    monkeypatch.setattr(tracking.MetricTracker, "from_profile", staticmethod(lambda prof, **kw: fake_tracker(**kw)))
    over = dict(g_widths=[4], d_ratios=[0.5, 1.0], z_dim=8, steps=2, batch_size=4, n_critic=1, n_eval=16, lr=1e-3)
    with pytest.raises(DataError, match="run notebook 01"):  # scoring never trains: the cells must exist
        E.capacity_grid(config.resolve("smoke"), over, progress=False, root=tmp_path)
    trained = E.train_capacity_grid(config.resolve("smoke"), over, progress=False, root=tmp_path)
    assert len(trained) == 2 and (trained["flops_per_step"] > 0).all()
    ckpts = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.safetensors")}
    again_trained = E.train_capacity_grid(config.resolve("smoke"), over, progress=False, root=tmp_path)
    pd.testing.assert_frame_equal(again_trained, trained)  # a finished cell is not retrained
    grid = E.capacity_grid(config.resolve("smoke"), over, progress=False, root=tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.safetensors")} == ckpts  # scoring wrote no checkpoint
    assert list(grid["train_s"]) == list(trained["train_s"])
    assert list(grid["ratio_requested"]) == [0.5, 1.0]
    assert (abs(grid["ratio"] / grid["ratio_requested"] - 1) < 0.15).all()
    assert (grid["total_flops"] == grid["flops_per_step"] * 2).all() and grid["fid"].notna().all()
    assert grid["total_flops"].iloc[1] > grid["total_flops"].iloc[0]  # the larger critic costs more
    path = tmp_path / "smoke" / "experiments" / "capacity_grid.csv"
    stamp = path.stat().st_mtime_ns
    again = E.capacity_grid(config.resolve("smoke"), over, progress=False, root=tmp_path)  # reused from disk
    assert path.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(again, pd.read_csv(path))
    # a cell whose checkpoint changed (retrained) is scored again, never read from the cache
    from ganreport import io
    from ganreport.train import latest_checkpoint

    ck = latest_checkpoint(grid["model_dir"].iloc[0])
    tensors, meta = io.load_checkpoint(ck)
    io.save_checkpoint(ck, {k: v * 1.5 if k.startswith("G") and v.is_floating_point() else v
                            for k, v in tensors.items()}, meta)
    rescored = E.capacity_grid(config.resolve("smoke"), over, progress=False, root=tmp_path)
    assert path.stat().st_mtime_ns != stamp and rescored["fid"].iloc[0] != again["fid"].iloc[0]
    assert rescored["fid"].iloc[1] == again["fid"].iloc[1]  # the unchanged cell: its own cached row
    grid = rescored

    lime_over = dict(n_images=2, samples=12, segments=6)
    res = E.lime_across_critics(config.resolve("smoke"), grid, lime_over, progress=False, root=tmp_path)
    n = len(grid)
    assert res.jaccard.shape == (n, n) and np.allclose(np.diag(res.jaccard.to_numpy(float)), 1.0)
    assert np.allclose(res.jaccard.to_numpy(float), res.jaccard.to_numpy(float).T)
    assert set(res.maps) == set(grid["cell"]) and res.maps[grid["cell"][0]].shape == (2, 28, 28)
    assert ((res.summary["concentration"] > 0) & (res.summary["concentration"] <= 1)).all()
    assert 0 < res.chance < 1
    back = E.lime_across_critics(config.resolve("smoke"), grid, lime_over, progress=False, root=tmp_path)
    pd.testing.assert_frame_equal(back.summary, res.summary)
    assert torch.allclose(back.maps[grid["cell"][1]], res.maps[grid["cell"][1]])
    # notebook 04's readers: the same results from disk, nothing computed; a clear error when absent
    smoke = config.resolve("smoke")
    pd.testing.assert_frame_equal(E.load_capacity_grid(smoke, root=tmp_path), pd.read_csv(path))
    read = E.load_lime_across_critics(smoke, root=tmp_path)
    pd.testing.assert_frame_equal(read.summary, res.summary)
    assert torch.equal(read.maps[grid["cell"][0]], back.maps[grid["cell"][0]]) and read.chance == res.chance
    with pytest.raises(DataError, match="02 \\(critic.capacity_grid\\)"):
        E.load_capacity_grid(smoke, root=tmp_path / "elsewhere")
    assert isinstance(E.verdict_lime(res), str)
    for fig in (E.plot_capacity_grid(grid), E.plot_lime_across_critics(res)):
        assert fig.axes
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_settings_reject_unknown_keys():
    s = E.settings(config.resolve("smoke"))
    assert set(s) == {"tracking", "grid", "lime"}
    with pytest.raises(ConfigError, match="unknown experiments.grid"):
        E.settings(config.resolve("smoke"), {"grid": {"widths": [1]}})
    off = E.capacity_grid(config.resolve("smoke"), {"enabled": False})  # disabled: nothing trained, empty results
    assert E.train_capacity_grid(config.resolve("smoke"), {"enabled": False}).empty
    assert off.empty and E.verdict_capacity(off).startswith("Inconclusive")
    res = E.lime_across_critics(config.resolve("smoke"), off, {"enabled": False})
    assert res.summary.empty and E.verdict_lime(res).startswith("Inconclusive")


# ----------------------------------------------------------------------------- correlations and verdicts
def synthetic_tracking(k=10, seed=0, critic_noise=1.0, offset=-3.0):
    rng = np.random.default_rng(seed)
    steps = np.arange(1, k + 1) * 100
    ref = 200 * np.exp(-steps / 400) + 20 + rng.normal(0, 2, k)
    return pd.DataFrame({
        "step": steps, "fid_ref": ref, "fid": ref + rng.normal(0, 3, k), "kid": ref / 100 + rng.normal(0, 0.05, k),
        "is": 10 - ref / 30 + rng.normal(0, 0.1, k), "critic_gap": rng.normal(5, critic_noise, k),
        "critic_real": offset + rng.normal(2.5, critic_noise, k), "critic_fake": offset + rng.normal(-2.5, critic_noise, k),
        "confidence": 1 - ref / 400, "tracker_s": np.full(k, 0.5),
    }).assign(critic_offset=lambda d: (d["critic_real"] + d["critic_fake"]) / 2)


def test_tracking_correlations_match_scipy():
    df = synthetic_tracking()
    corr = E.tracking_correlations(df)
    assert corr.attrs["reference"] == "fid_ref" and "tracker_s" not in corr.index and "fid_ref" not in corr.index
    for m in ("fid", "kid", "is", "critic_gap", "critic_offset"):
        r = stats.spearmanr(df[m], df["fid_ref"])
        assert corr.loc[m, "rho"] == pytest.approx(r.statistic) and corr.loc[m, "p"] == pytest.approx(r.pvalue)
        d = df[[m, "fid_ref"]].diff().dropna()
        assert corr.loc[m, "rho_diff"] == pytest.approx(stats.spearmanr(d[m], d["fid_ref"]).statistic)
        assert corr.loc[m, "rho_confidence"] == pytest.approx(stats.spearmanr(df[m], df["confidence"]).statistic)
    assert corr.loc["is", "rho_oriented"] == pytest.approx(-corr.loc["is", "rho"])  # higher-is-better vs lower
    assert corr.loc["fid", "rho_oriented"] == pytest.approx(corr.loc["fid", "rho"])
    assert math.isnan(corr.loc["critic_offset", "rho_oriented"])
    no_ref = E.tracking_correlations(df.drop(columns="fid_ref"))
    assert no_ref.attrs["reference"] == "fid" and "fid" not in no_ref.index


def test_verdict_tracking_numbers_and_direction():
    corr = E.tracking_correlations(synthetic_tracking(k=12))
    text = E.verdict_tracking(corr)
    assert text.startswith("Agrees") and text.count(".") >= 1
    for m in ("fid", "kid"):
        assert f"{m} ρ = {corr.loc[m, 'rho_oriented']:.2f}" in text
    best = max(tracking.CRITIC_KEYS, key=lambda c: abs(corr.loc[c, "rho"]))
    assert f"{best}, has |ρ| = {abs(corr.loc[best, 'rho']):.2f}" in text
    df = synthetic_tracking(k=12)
    df["critic_gap"] = df["fid_ref"] / 10  # a critic statistic that tracks quality
    text2 = E.verdict_tracking(E.tracking_correlations(df))
    assert text2.startswith("Disagrees") and "critic_gap, has |ρ| = 1.00" in text2
    assert E.verdict_tracking(E.tracking_correlations(synthetic_tracking(k=3))).startswith("Inconclusive")


def test_verdict_offset_numbers():
    df = synthetic_tracking(k=10, critic_noise=0.2, offset=-3.0)
    s = E.critic_offset_summary(df)
    tail = df["critic_offset"].iloc[-5:]
    assert s["k"] == 5 and s["mean"] == pytest.approx(tail.mean()) and s["sd"] == pytest.approx(tail.std(ddof=1))
    text = E.verdict_offset(df)
    assert text.startswith("Agrees") and _fmt(s["mean"]) in text and _fmt(s["sd"]) in text
    grid = pd.DataFrame({"critic_offset": [-5.0, -3.0, -1.0], "d_params": [100, 200, 400]})
    assert "ρ with the critic's parameter count is -1.00 (smaller critics sit farther from zero)" in E.verdict_offset(df, grid)
    centred = synthetic_tracking(k=10, critic_noise=0.5, offset=0.0)
    centred["critic_offset"] = [0.1, -0.1] * 5
    assert E.verdict_offset(centred).startswith("Disagrees")


def synthetic_grid(fids):
    rows = []
    for gw, vals in fids.items():
        for r, f in zip((0.25, 0.5, 1.0, 2.0), vals):
            rows.append(dict(cell=f"g{gw}_{r}", g_width=gw, ratio_requested=r, ratio=r * 1.01, d_params=int(1000 * r * gw),
                             total_flops=1e9 * gw * (1 + 4 * r), fid=f, steps=100))
    return pd.DataFrame(rows)


def test_verdict_capacity_agree_and_disagree():
    agree = synthetic_grid({8: [60.0, 40.0, 39.0, 41.0], 16: [55.0, 35.0, 36.0, 34.0]})
    text = E.verdict_capacity(agree)
    assert text.startswith("Agrees"), text
    assert "0.51× the generator's parameters (FID 40 at 2.4e+10 FLOPs)" in text  # g8: 0.505 ratio, 8e9 * 3 FLOPs
    eff = E.capacity_efficiency(agree)
    assert list(eff["efficient_ratio"]) == [0.505, 0.505]
    strong = synthetic_grid({8: [60.0, 50.0, 40.0, 30.0], 16: [55.0, 50.0, 40.0, 30.0]})
    t2 = E.verdict_capacity(strong)
    assert t2.startswith("Disagrees") and "-40%" in t2
    small = synthetic_grid({8: [30.0, 40.0, 41.0, 42.0], 16: [25.0, 35.5, 36.0, 34.9]})
    t3 = E.verdict_capacity(small)
    assert t3.startswith("Disagrees") and "critics below half" in t3 and "0.25× the generator's parameters (FID 30 at" in t3
    flat = synthetic_grid({8: [40.0, 41.0, 40.5, 41.0], 16: [35.0, 35.5, 36.0, 34.9]})
    assert E.verdict_capacity(flat).startswith("Inconclusive") and "no measurable difference" in E.verdict_capacity(flat)
    ci = agree.assign(fid_ci_low=agree["fid"] - 30, fid_ci_high=agree["fid"] + 30)  # every interval overlaps
    assert E.capacity_efficiency(ci)["n_as_good"].tolist() == [4, 4]
    assert E.verdict_capacity(pd.DataFrame()).startswith("Inconclusive")


def test_verdict_lime_numbers():
    summary = pd.DataFrame({"cell": ["a", "b"], "stroke_share": [0.3, 0.5], "stroke_area": [0.2, 0.2],
                            "stroke_enrichment": [1.5, 2.5]})
    m = pd.DataFrame([[1.0, 0.6], [0.6, 1.0]], index=["a", "b"], columns=["a", "b"])
    res = E.LimeAcross(summary, m, m * 1.2, 0.13, torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    text = E.verdict_lime(res)
    assert text.startswith("Agrees") and "0.4 of its attribution" in text and "enrichment 1.5–2.5" in text
    assert "Jaccard 0.6 (chance 0.13)" in text and "mean ρ = 0.72" in text and "largely the same" in text


def test_lime_helpers():
    w = [np.array([3.0, -2.0, 0.1, 0.0, 1.0])]
    masks = torch.tensor([[[0, 0, 1], [2, 3, 4]]])
    maps = torch.tensor([[[3.0, 3.0, -2.0], [0.1, 0.0, 1.0]]])
    assert np.allclose(E.superpixel_weights(maps, masks)[0], w[0])
    assert E.top_jaccard(np.array([5, 4, 0, 0, 1.0]), np.array([5, 0, 4, 0, 1.0]), top=0.4) == pytest.approx(1 / 3)
    rng = np.random.default_rng(0)
    sim = np.mean([E.top_jaccard(rng.normal(size=20), rng.normal(size=20), 0.2) for _ in range(4000)])
    assert E.chance_jaccard(20, 0.2) == pytest.approx(sim, abs=0.01)
    imgs = -torch.ones(1, 1, 2, 2)
    imgs[0, 0, 0, 0] = 1.0
    share, area = E.stroke_share(torch.tensor([[[3.0, 1.0], [0.0, 0.0]]]), imgs)
    assert share[0] == pytest.approx(0.75) and area[0] == pytest.approx(0.25)


def test_plot_tracking_shares_x_axis():
    import matplotlib.pyplot as plt

    fig = E.plot_tracking(synthetic_tracking())
    axes = [a for a in fig.axes if a.has_data()]
    assert len(axes) >= 5
    assert all(a.get_shared_x_axes().joined(axes[0], a) for a in axes)
    assert all(a.get_ylabel() for a in axes)
    plt.close(fig)
    empty = E.plot_tracking(pd.DataFrame({"step": []}))
    plt.close(empty)


def test_profiles_have_experiments_block():
    for p in ("smoke", "quick", "full"):
        s = E.settings(config.resolve(p))
        assert s["tracking"]["enabled"] in (True, False)
        json.dumps(s)
