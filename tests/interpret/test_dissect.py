"""GAN Dissection: known answers on a synthetic generator, streaming quantiles against numpy,
IoU against a naive loop, interventions, bounded memory, segmenter scores, bad input."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganreport.data import SHAPES_CONCEPTS, make_shapes
from ganreport.errors import CheckpointError, ConfigError, DataError
from ganreport.interpret import dissect as D
from ganreport.models import build
from ganreport.models import segmenter as S

C = len(SHAPES_CONCEPTS)
# channel-0 code of each concept: sky in the middle (0), the door at the end (+1), the house at -1
CODE_ORDER = ("house", "roof", "ground", "tree", "sky", "sun", "cloud", "window", "door")
CODES = torch.empty(C)
CODES[[SHAPES_CONCEPTS.index(c) for c in CODE_ORDER]] = torch.linspace(-1, 1, C)
SKY = SHAPES_CONCEPTS.index("sky")


class ToyGenerator(nn.Module):
    """Layer ``units`` has unit j == mask of concept j of a bank of real ``shapes`` scenes; the image
    is rendered linearly from the units, ``x = v_sky + Σ_j u_j (v_j − v_sky)`` (``v_j`` a code per
    concept, channel 0), so ablating unit j repaints concept j as sky, inserting unit j (value 1)
    into the sky paints concept j, and inserting the door (code +1) on a house (code -1) gives the
    sky's code 0: the toy "vetoes" doors on houses and accepts them in the sky."""

    def __init__(self, n_scenes: int = 64) -> None:
        super().__init__()
        self.register_buffer("masks", make_shapes(n_scenes, seed=0).masks)
        self.z_dim, self.img_shape = 1, (3, 32, 32)
        self.units = nn.Identity()
        self.pool = nn.AvgPool2d(2)

    def sample_z(self, n, rng=None, device="cpu"):
        return torch.randint(len(self.masks), (n, 1), generator=rng).float().to(device)

    def forward(self, z):
        oh = F.one_hot(self.masks[z[:, 0].long()], C).permute(0, 3, 1, 2).float()
        u = self.units(oh)
        self.pool(u)  # a 16x16 layer (average of the unit maps) to exercise upsampling
        img = CODES[SKY] + (u * (CODES - CODES[SKY]).view(1, -1, 1, 1)).sum(1, keepdim=True)
        return img.expand(-1, 3, -1, -1)

    def layers(self):
        return OrderedDict(units=self.units, half=self.pool)


class OracleSegmenter(nn.Module):
    """Reads the concept back from channel 0 (nearest code); soft version differentiable."""

    concepts = SHAPES_CONCEPTS

    def forward(self, x):
        return -30.0 * (x[:, :1] - CODES.view(1, -1, 1, 1)) ** 2


@pytest.fixture(scope="module")
def toy():
    return ToyGenerator().eval(), OracleSegmenter()


@pytest.fixture(scope="module")
def toy_dissection(toy):
    G, seg = toy
    return D.dissect(G, seg, n_samples=160, batch_size=64, seed=0, progress=False)


# ----------------------------------------------------------------------------- streaming quantile
def test_quantile_sketch_within_one_percent_of_exact_on_a_million_values():
    rng = np.random.default_rng(0)
    n = 1_000_000
    cols = [np.maximum(rng.normal(0.2, 1.0, n), 0),            # ReLU-like: 42 % exact zeros
            rng.lognormal(0.0, 1.5, n),                         # heavy tail
            -rng.gamma(2.0, 3.0, n)]                            # negative values
    x = torch.from_numpy(np.stack(cols, 1).astype(np.float32))
    sk = D.QuantileSketch(3, rel_acc=0.005)
    for i in range(0, n, 100_000):
        sk.update(x[i:i + 100_000])
    assert sk.count == n
    for q in (0.01, 0.1, 0.5, 0.9, 0.99, 0.999):
        est = sk.quantile(q).numpy()
        exact = np.quantile(x.numpy().astype(np.float64), q, axis=0)
        for e, t in zip(est, exact):
            if t == 0:
                assert e == 0
            else:
                assert abs(e - t) <= 0.01 * abs(t), (q, e, t)


def test_sketch_memory_is_constant_and_bad_input_is_refused():
    sk = D.QuantileSketch(5)
    before = sk.nbytes
    g = torch.Generator().manual_seed(0)
    sk.update(torch.randn(1000, 5, generator=g))
    after_small = sk.nbytes
    for _ in range(20):
        sk.update(torch.randn(5000, 5, generator=g))
    assert before == after_small == sk.nbytes
    assert sk.counts.sum() == sk.count * 5 == 101_000 * 5
    with pytest.raises(DataError, match=r"\(N, 5\)"):
        sk.update(torch.zeros(10, 4))
    with pytest.raises(DataError, match="non-finite"):
        sk.update(torch.full((2, 5), float("nan")))
    with pytest.raises(DataError, match="empty"):
        D.QuantileSketch(2).quantile(0.5)
    with pytest.raises(ConfigError):
        sk.quantile(1.5)


# ----------------------------------------------------------------------------- dissection
def test_synthetic_units_equal_to_concept_masks_get_iou_one(toy_dissection):
    d = toy_dissection["units"]
    assert d.iou.shape == (C, C)
    present = d.seg_area > 0
    assert present.sum() >= 7  # most concepts occur in the scene bank
    for j in torch.nonzero(present).flatten().tolist():
        assert d.iou[j, j] == pytest.approx(1.0, abs=1e-6), SHAPES_CONCEPTS[j]
        off = torch.cat([d.iou[j, :j], d.iou[j, j + 1:]])
        assert off.max() < 0.05, (SHAPES_CONCEPTS[j], off)
    ci, cv = d.best()
    assert (ci[present] == torch.nonzero(present).flatten()).all()
    assert int(d.interpretable().sum()) == int(present.sum())
    # the 16x16 average-pooled layer, upsampled: still the matching concept (IoU < 1: the top-1 %
    # threshold keeps only the interior of small objects after bilinear upsampling)
    h = toy_dissection["half"]
    assert h.shape == (16, 16)
    big = [SHAPES_CONCEPTS.index(c) for c in ("sky", "ground", "house", "tree")]
    assert all(int(h.best()[0][j]) == j for j in big)
    assert all(0.7 < float(h.iou[j, j]) < 1 for j in big[:2])


def _naive_iou(G, seg, d, n, seed):
    """Slow reference: per image, per unit, per concept, with numpy and the dissection's thresholds."""
    inter = np.zeros(d.iou.shape)
    union = np.zeros(d.iou.shape)
    with torch.no_grad(), D.record_layers(G, [d.layer]) as acts:
        for i in range(n):
            x = G(D.latents(G, seed, i, i + 1))
            lab = seg(x).argmax(1)[0].numpy()
            up = F.interpolate(acts[d.layer], size=x.shape[-2:], mode="bilinear", align_corners=False)[0].numpy()
            for u in range(up.shape[0]):
                t = float(d.threshold[u])
                m = up[u] > t if bool(d.strict[u]) else up[u] >= t
                for c in range(len(d.concepts)):
                    s = lab == c
                    inter[u, c] += np.logical_and(m, s).sum()
                    union[u, c] += np.logical_or(m, s).sum()
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def test_iou_and_thresholds_match_naive_reference_on_a_random_dcgan():
    torch.manual_seed(0)  # weight init of the throwaway network only
    G, _, _ = build("dcgan", (3, 32, 32), g_width=4, z_dim=8)
    G.eval()
    seg = OracleSegmenter()
    n = 24
    out = D.dissect(G, seg, ["fc", "up1"], n_samples=n, batch_size=16, seed=3, progress=False)
    for name, d in out.items():
        ref = _naive_iou(G, seg, d, n, 3)
        np.testing.assert_allclose(d.iou.numpy(), ref, atol=1e-6)
        # threshold = top 1 % of raw activations (exact quantile from numpy), within the sketch accuracy
        with torch.no_grad(), D.record_layers(G, [name]) as acts:
            G(D.latents(G, 3, 0, n))
        raw = acts[name].permute(0, 2, 3, 1).reshape(-1, d.n_units).double().numpy()
        exact = np.quantile(raw, 0.99, axis=0, method="lower")  # order statistic floor(q (n - 1))
        np.testing.assert_allclose(d.threshold.numpy(), exact, rtol=0.0051, atol=1e-6)
    # the results do not depend on the batch size (latents are drawn per fixed-size block)
    again = D.dissect(G, seg, "fc", n_samples=n, batch_size=7, seed=3, progress=False)
    assert torch.allclose(again["fc"].iou, out["fc"].iou, atol=1e-6)


def test_dissection_state_does_not_grow_with_sample_count(toy):
    G, seg = toy
    small = D.dissect(G, seg, "units", n_samples=32, batch_size=32, progress=False)["units"]
    large = D.dissect(G, seg, "units", n_samples=320, batch_size=32, progress=False)["units"]
    assert small.state_bytes == large.state_bytes
    assert small.top_samples.shape == large.top_samples.shape == (C, 8)
    assert large.act_area.sum() > 5 * small.act_area.sum()  # it did see ten times more pixels


# ----------------------------------------------------------------------------- interventions
def test_ablating_the_units_that_carry_a_concept_removes_it(toy):
    G, seg = toy
    door = SHAPES_CONCEPTS.index("door")
    e = D.causal_effect(G, seg, "units", [door], "door", "ablate", n_samples=128, seed=1)
    assert e.base_share > 0.002
    assert e.ace == pytest.approx(e.base_share, rel=1e-6) and e.relative == pytest.approx(1.0)
    other = D.causal_effect(G, seg, "units", [SHAPES_CONCEPTS.index("sun"), SHAPES_CONCEPTS.index("tree")], "door",
                            "ablate", n_samples=128, seed=1)
    assert other.ace == pytest.approx(0.0, abs=1e-9)


def test_inserting_a_unit_paints_its_concept_where_asked(toy):
    G, seg = toy
    door = SHAPES_CONCEPTS.index("door")
    pos = torch.zeros(32, 32)
    pos[0:4, 0:4] = 1  # top-left corner: sky in every scene
    e = D.causal_effect(G, seg, "units", [door], "door", "insert", values=1.0, positions=pos, n_samples=64, seed=1)
    assert e.ace == pytest.approx(16 / 1024, abs=1e-6)


def test_ace_vs_k_beats_random_and_alpha_finds_the_causal_unit(toy, toy_dissection):
    G, seg = toy
    d = toy_dissection["units"]
    df = D.ace_vs_k(G, seg, d, "door", ks=(1, 3), mode="ablate", n_random=2, n_samples=64, seed=2)
    iou1 = df[(df.selection == "iou") & (df.k == 1)].ace.item()
    rnd1 = df[(df.selection == "random") & (df.k == 1)].ace.item()
    assert iou1 > 0 and iou1 > rnd1
    al = D.optimal_unit_set(G, seg, d, "door", "ablate", lam=1e-3, steps=20, batch_size=16, lr=0.15, seed=0)
    assert int(al.ranking()[0]) == SHAPES_CONCEPTS.index("door")
    a_door = float(al.alpha[SHAPES_CONCEPTS.index("door")])
    assert a_door > 0.3 and float(al.alpha.sort().values[-2]) < 0.5 * a_door
    assert float(al.alpha.max()) <= 1 and float(al.alpha.min()) >= 0
    cmp = D.compare_alpha_iou(al, d, ks=(1,))
    assert cmp.overlap.item() == 1.0


def test_context_test_counts_appearances(toy, toy_dissection):
    G, seg = toy
    d = toy_dissection["units"]
    door = SHAPES_CONCEPTS.index("door")
    assert float(d.high[door]) == pytest.approx(1.0)  # mean activation inside the unit's region
    ct = D.context_test(G, seg, d, "door", D.DOOR_CONTEXTS, k=1, n_samples=64, seed=0, min_pixels=1,
                        margin=0).set_index("context")
    # the layer is at 32x32, so a cell is one pixel: in the sky the toy paints it as door; on a house
    # the codes add up to the sky's, so no door appears: rates 1 and 0 by construction
    assert ct.loc["in sky", "trials"] > 10 and ct.loc["on house", "trials"] > 5
    assert ct.loc["in sky", "rate"] == 1.0 and ct.loc["in sky", "mean_added"] == pytest.approx(1.0)
    assert ct.loc["on house", "rate"] == 0.0
    veto = D.veto_table(ct.reset_index().assign(model="toy"), {"door": "on house"})
    assert np.isnan(veto.veto.item())  # usual-context rate 0: the veto ratio is undefined, not invented


def test_cheap_route_agrees_on_the_toy(toy, toy_dissection):
    G, seg = toy
    A = D.attribute_units(G, seg, ["units"], n_samples=64, batch_size=32)
    a = A["units"]
    assert a.shape == (C, C)
    door = SHAPES_CONCEPTS.index("door")
    # gradient x activation of the door share is largest for the door unit
    assert int(a[:, door].argmax()) == door
    ag = D.route_agreement(toy_dissection, A, k=1)
    assert len(ag) and (ag[ag.concept == "door"].topk_overlap == 1.0).all()


def test_spearman_and_overlap_against_scipy_and_by_hand():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert D.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert D.topk_overlap(torch.tensor([3, 1, 2, 0]), torch.tensor([1, 3, 0, 2]), 2) == 1.0
    assert D.topk_overlap(torch.tensor([3, 1, 2, 0]), torch.tensor([0, 2, 1, 3]), 2) == 0.0
    lo, hi = D.wilson(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


# ----------------------------------------------------------------------------- bad input
def test_unknown_layer_and_concept_give_clear_errors(toy):
    G, seg = toy
    with pytest.raises(ConfigError, match="valid layers: units, half"):
        D.dissect(G, seg, ["nope"], n_samples=4, progress=False)
    with pytest.raises(ConfigError, match="not labelled by the segmenter; known: sky, ground"):
        D.causal_effect(G, seg, "units", [0], "unicorn", n_samples=4)
    with pytest.raises(ConfigError, match="values="):
        D.causal_effect(G, seg, "units", [0], "door", "insert", n_samples=4)
    with pytest.raises(ConfigError, match="unknown intervention mode"):
        D.causal_effect(G, seg, "units", [0], "door", "paint", n_samples=4)
    with pytest.raises(ConfigError, match="unit indices"):
        D.causal_effect(G, seg, "units", [C + 3], "door", n_samples=4)
    with pytest.raises(ConfigError, match="concepts"):
        D.dissect(G, nn.Conv2d(3, 2, 1), n_samples=4, progress=False)


# ----------------------------------------------------------------------------- segmenter
def test_segmenter_scores_match_torchmetrics():
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (4, 16, 16), generator=g)
    pred = torch.where(torch.rand(target.shape, generator=g) < 0.7, target, torch.randint(0, 5, target.shape, generator=g))
    rep = S.scores_from_confusion(S.confusion_matrix(pred, target, 5), tuple("abcde"))
    assert rep.pixel_accuracy == pytest.approx(float(MulticlassAccuracy(5, average="micro")(pred, target)), abs=1e-6)
    assert rep.mean_iou == pytest.approx(float(MulticlassJaccardIndex(5, average="macro")(pred, target)), abs=1e-6)


def test_segmenter_trains_caches_and_reloads(tmp_path):
    cfg = S.SegmenterConfig(width=4, n_train=64, epochs=1, batch_size=32, n_test=16, seed=1)
    with pytest.raises(CheckpointError, match="no cached segmenter"):
        S.load_segmenter(cfg, cache_dir=tmp_path, train_if_missing=False)
    seg = S.load_segmenter(cfg, cache_dir=tmp_path, progress=False)
    path = S.segmenter_path(cfg, tmp_path)
    assert path.is_file() and cfg.key() in path.name
    again = S.load_segmenter(cfg, cache_dir=tmp_path, train_if_missing=False)
    x = make_shapes(4, seed=9).images
    assert torch.equal(seg.segment(x), again.segment(x))
    assert 0 <= again.meta["pixel_accuracy"] <= 1 and "door" in again.meta["per_concept_iou"]
    assert S.SegmenterConfig(seed=2).key() != S.SegmenterConfig(seed=1).key()
    with pytest.raises(ConfigError, match="unicorn"):
        seg.concept_index("unicorn")
    with pytest.raises(DataError):
        seg(torch.zeros(2, 1, 32, 32))


# ----------------------------------------------------------------------------- end to end
def test_run_dissection_end_to_end_on_a_tiny_model(tmp_path):
    import warnings

    from ganreport import data, results
    from ganreport.train import TrainConfig, Trainer

    root = tmp_path / "runs"
    shapes = data.load("shapes", "train", n=120)
    cfg = TrainConfig(steps=2, batch_size=8, ckpt_every=2, grid_every=2, log_every=1, n_grid=4)
    Trainer("dcgan", shapes, root / "tiny" / "shapes" / "dcgan", cfg, g_width=4, d_width=4, z_dim=8).fit(progress=False)
    seg = S.load_segmenter(S.SegmenterConfig(width=4, n_train=48, epochs=1, n_test=8), cache_dir=tmp_path, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = D.run_dissection("tiny", ["dcgan", "stylegan"], n_samples=48, ks=(1, 2), n_effect=8, n_random=1,
                               alpha_steps=2, n_context=16, n_attr=8, segmenter=seg, progress=False, root=root)
    assert any("skipping stylegan" in str(w.message) for w in caught)  # not trained: skipped with a warning
    assert list(rep.layers.layer) == ["fc", "up1", "up2", "out"] and (rep.layers.model == "dcgan").all()
    assert rep.disentangled.layer.item() != "out"  # an RGB output is not a candidate
    assert set(rep.ace.selection) == {"iou", "alpha", "random"} and set(rep.ace["mode"]) == {"ablate", "insert"}
    assert set(rep.context.concept) == {"door", "tree"}
    assert set(rep.cheap_cost.route) == {"share", "last_layer"}
    out = D.dissection_dir("tiny", root)
    for name in ("iou_hist_dcgan", "units_dcgan", "layers", "ace_vs_k", "context"):
        assert (out / f"{name}.png").is_file()
    assert (out / "layers.csv").is_file()
    df = results.load("tiny", root)
    assert (df.section == "dissection").all()
    got = df[df.metric == "dissect_interpretable_units"].set_index("feature").value
    assert got.to_dict() == {r.layer: r.interpretable for r in rep.layers.itertuples()}
    with pytest.raises(ConfigError, match="shapes"):
        D.run_dissection("tiny", ["dcgan"], dataset="mnist", segmenter=seg, root=root)
    with pytest.raises(CheckpointError, match="train them first"), pytest.warns(UserWarning, match="skipping wgan_gp"):
        D.run_dissection("tiny", ["wgan_gp"], segmenter=seg, root=root, progress=False)


@pytest.mark.parametrize("model", ["stylegan", "wgan_gp"])
def test_generic_over_architectures(model):
    """Dissection, interventions and attribution use only G.layers(): they run on every registry model."""
    torch.manual_seed(0)  # weight init of the throwaway network only
    kw = dict(g_width=4, z_dim=8, **({"w_dim": 8} if model == "stylegan" else {}))
    G, _, _ = build(model, (3, 32, 32), **kw)
    G.eval().requires_grad_(False)
    seg = OracleSegmenter()
    d = D.dissect(G, seg, n_samples=12, batch_size=6, progress=False)
    assert list(d) == list(G.layers())
    last = D.last_hidden_layer(G)
    e = D.causal_effect(G, seg, last, list(range(d[last].n_units)), "sky", "ablate", n_samples=6)
    assert np.isfinite(e.ace)
    A = D.attribute_units(G, seg, [n for n in d if n != last][:1], concepts=["sky"], n_samples=6, batch_size=6)
    a = next(iter(A.values()))
    assert torch.isfinite(a[:, SKY]).all() and torch.isnan(a[:, SHAPES_CONCEPTS.index("door")]).all()
