"""Metrics: agreement with torchmetrics / scipy / scikit-image / naive loops, known answers,
chunk- and batch-size independence, determinism and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganreport.errors import ConfigError, DataError
from ganreport.metrics import METRICS, Result, compute
from ganreport.metrics.ddm import log_mean_exp_neg_dist
from ganreport.metrics.mmd import median_bandwidth
from ganreport.metrics.prdc import prdc_per_sample
from ganreport.metrics.quality import laplacian_variance, noise_sigma, ssim


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gauss(n: int, d: int, seed: int, shift: float = 0.0, mix: bool = True) -> torch.Tensor:
    """Correlated Gaussian features (float64)."""
    g = gen(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    if mix:
        a = torch.randn(d, d, generator=gen(1000 + d), dtype=torch.float64) / math.sqrt(d)
        x = x @ (torch.eye(d, dtype=torch.float64) + a)
    return x + shift


class Identity(nn.Module):
    """Feature 'extractor' for torchmetrics that returns precomputed features unchanged."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# --------------------------------------------------------------------------- torchmetrics agreement
@pytest.mark.parametrize("n_real,n_fake", [(700, 500), (40, 60), (90, 30)])  # also fewer samples than dims
def test_fid_agrees_with_torchmetrics(n_real, n_fake):
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = gauss(n_real, 48, 0), gauss(n_fake, 48, 1, shift=0.2)
    tm = FrechetInceptionDistance(feature=Identity(48))
    tm.update(real[:20], real=True)
    tm.update(real[20:], real=True)  # accumulation in two batches
    tm.update(fake, real=False)
    ref = float(tm.compute())
    ours = compute("fid", real, fake, n_boot=0).value
    assert rel(ours, ref) < 1e-4, (ours, ref)


def test_fid_agrees_with_scipy_sqrtm():
    from scipy.linalg import sqrtm

    real, fake = gauss(400, 12, 2).numpy(), gauss(300, 12, 3, shift=0.5).numpy()
    m1, m2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    ref = float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real))
    assert rel(compute("fid", real, fake, n_boot=0).value, ref) < 1e-8


@pytest.mark.parametrize("subset_size,subsets", [(100, 6), (300, 1)])
def test_kid_agrees_with_torchmetrics(subset_size, subsets):
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = gauss(400, 32, 4), gauss(300, 32, 5, shift=0.3)
    tm = KernelInceptionDistance(feature=Identity(32), subsets=subsets, subset_size=subset_size)
    tm.update(real, real=True)
    tm.update(fake, real=False)
    torch.manual_seed(7)  # torchmetrics draws its subsets from the global generator
    ref_mean, ref_std = (float(t) for t in tm.compute())
    res = compute("kid", real, fake, seed=7, num_subsets=subsets, subset_size=subset_size)
    assert rel(res.value, ref_mean) < 1e-4
    if subsets > 1:
        assert rel(res.extra["std"], ref_std) < 1e-4


@pytest.mark.parametrize("splits", [1, 10])
def test_is_agrees_with_torchmetrics(splits):
    from torchmetrics.image.inception import InceptionScore

    logits = gauss(500, 10, 6, mix=False) * 3  # 500: equal splits, where torch.chunk and the reference agree
    tm = InceptionScore(feature=Identity(10), splits=splits)
    tm.update(logits)
    torch.manual_seed(11)
    ref_mean, ref_std = (float(t) for t in tm.compute())
    res = compute("is", None, logits, seed=11, splits=splits)
    assert rel(res.value, ref_mean) < 1e-4
    if splits > 1:
        assert rel(res.extra["std"], ref_std) < 1e-4


def test_is_agrees_with_the_reference_slicing_on_uneven_splits():
    """Salimans et al.'s code (openai/improved-gan, inception_score.py) slices
    ``preds[i·N // splits:(i + 1)·N // splits]``; written here in numpy on the same permutation."""
    logits = gauss(503, 10, 6, mix=False) * 3
    perm = torch.randperm(503, generator=torch.Generator().manual_seed(11))
    preds = torch.softmax(logits[perm], 1).numpy()
    scores = []
    for i in range(10):
        part = preds[i * 503 // 10:(i + 1) * 503 // 10]
        kl = part * (np.log(part) - np.log(np.mean(part, 0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    res = compute("is", None, logits, seed=11, splits=10)
    assert rel(res.value, float(np.mean(scores))) < 1e-10
    assert rel(res.extra["std"], float(np.std(scores, ddof=1))) < 1e-10  # torch's std is the sample std


# --------------------------------------------------------------------------- known answers
def test_fid_known_answers():
    x = gauss(300, 8, 7)
    assert abs(compute("fid", x, x, n_boot=0).value) < 1e-8  # identical sets
    mu = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    a = gauss(40000, 4, 8, mix=False)
    b = gauss(40000, 4, 9, mix=False) + mu
    # FID(N(0, I), N(mu, I)) = ||mu||^2 = 5.25; estimation bias is O(d^2/n)
    assert compute("fid", a, b, n_boot=0).value == pytest.approx(float(mu @ mu), rel=0.01)


def test_kid_and_mmd_near_zero_for_same_distribution_and_consistent():
    a, b = gauss(400, 16, 10), gauss(400, 16, 11)
    kid_same = compute("kid", a, b, num_subsets=10, subset_size=200)
    kid_diff = compute("kid", a, gauss(400, 16, 12, shift=0.5), num_subsets=10, subset_size=200)
    assert abs(kid_same.value) < 0.1 * kid_diff.value
    # one subset of all samples = the unbiased polynomial MMD² on the full sets
    full = compute("kid", a, b, num_subsets=1, subset_size=400).value
    assert full == pytest.approx(compute("mmd_poly", a, b, n_blocks=0).value, rel=1e-10)


def test_is_known_answers():
    k = 7
    confident = torch.eye(k, dtype=torch.float64).repeat(50, 1) * 60  # uniform over classes, one-hot
    assert compute("is", None, confident, splits=1).value == pytest.approx(k, rel=1e-6)
    assert compute("is", None, torch.zeros(100, k), splits=5).value == pytest.approx(1.0, abs=1e-12)
    probs = torch.softmax(gauss(200, 5, 13, mix=False), 1)
    assert compute("is", None, probs, probs=True, splits=4).value == pytest.approx(
        compute("is", None, probs.log(), splits=4).value, rel=1e-10)


# --------------------------------------------------------------------------- naive loops
def naive_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    def dist(a, b):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))

    def kth(x):
        radii = []
        for i in range(len(x)):
            d = sorted(dist(x[i], x[j]) for j in range(len(x)) if j != i)
            radii.append(d[k - 1])
        return radii

    rr, rf = kth(real), kth(fake)
    prec = np.mean([any(dist(f, r) < rr[i] for i, r in enumerate(real)) for f in fake])
    rec = np.mean([any(dist(r, f) < rf[j] for j, f in enumerate(fake)) for r in real])
    dens = np.mean([sum(dist(f, r) < rr[i] for i, r in enumerate(real)) for f in fake]) / k
    cov = np.mean([min(dist(r, f) for f in fake) < rr[i] for i, r in enumerate(real)])
    return {"precision": prec, "recall": rec, "density": dens, "coverage": cov}


def test_prdc_matches_naive_loops():
    real, fake = gauss(45, 3, 14).numpy(), gauss(38, 3, 15, shift=0.4).numpy()
    ref = naive_prdc(real.tolist(), fake.tolist(), k=3)
    for name, v in ref.items():
        assert compute(name, real, fake, k=3, n_boot=10).value == pytest.approx(v, abs=1e-12), name


def naive_mmd2(x: np.ndarray, y: np.ndarray, k) -> float:
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)


def test_mmd_matches_naive_loops():
    x, y = gauss(40, 5, 16).numpy(), gauss(33, 5, 17, shift=0.3).numpy()
    bw = 1.7
    gk = lambda a, b: math.exp(-float(((a - b) ** 2).sum()) / (2 * bw * bw))  # noqa: E731
    pk = lambda a, b: (float(a @ b) / 5 + 1.0) ** 3  # noqa: E731
    assert compute("mmd", x, y, bandwidth=bw, n_blocks=0).value == pytest.approx(naive_mmd2(x, y, gk), rel=1e-10)
    assert compute("mmd", x, y, kernel="polynomial", n_blocks=0).value == pytest.approx(naive_mmd2(x, y, pk), rel=1e-10)


def test_mmd_median_heuristic_matches_scipy():
    from scipy.spatial.distance import pdist

    x, y = gauss(60, 4, 18), gauss(50, 4, 19)
    assert median_bandwidth(x, y, median_n=1000) == pytest.approx(float(np.median(pdist(torch.cat([x, y]).numpy()))),
                                                                  rel=1e-10)
    res = compute("mmd", x, y, n_blocks=0)
    assert res.extra["bandwidth"] == pytest.approx(median_bandwidth(x, y), rel=1e-12)


def test_ddm_matches_naive_formula():
    from scipy.special import logsumexp

    t, g = gauss(30, 4, 20).numpy(), gauss(25, 4, 21, shift=0.5).numpy()
    for distance, fn in (("kl", lambda d2: d2 / 2), ("sqeuclidean", lambda d2: d2), ("euclidean", np.sqrt)):
        terms = [-(logsumexp([-fn(((ti - gj) ** 2).sum()) for gj in g]) - math.log(len(g))) for ti in t]
        assert compute("ddm", t, g, distance=distance, n_boot=0).value == pytest.approx(np.mean(terms), rel=1e-10)
    r = gauss(20, 4, 22).numpy()
    eq35 = np.mean([(logsumexp([-((ri - tj) ** 2).sum() / 2 for tj in t]) - math.log(len(t)))
                    - (logsumexp([-((ri - gj) ** 2).sum() / 2 for gj in g]) - math.log(len(g))) for ri in r])
    assert compute("ddm_train", t, g, reference=r, n_boot=0).value == pytest.approx(eq35, rel=1e-10)


def test_c2st_1nn_matches_sklearn_leave_one_out():
    from sklearn.neighbors import NearestNeighbors

    real, fake = gauss(80, 3, 23), gauss(60, 3, 24, shift=0.7)
    z = torch.cat([real, fake]).numpy()
    labels = np.r_[np.zeros(80), np.ones(60)]
    _, idx = NearestNeighbors(n_neighbors=2).fit(z).kneighbors(z)
    pred = labels[idx[:, 1]]  # idx[:, 0] is the point itself
    balanced = ((pred[:80] == 0).mean() + (pred[80:] == 1).mean()) / 2
    assert compute("c2st_1nn", real, fake, n_boot=0).value == pytest.approx(balanced, abs=1e-12)


# --------------------------------------------------------------------------- C2ST / DDM behaviour
def test_c2st_chance_and_separable():
    a, b = gauss(600, 6, 25), gauss(600, 6, 26)
    assert abs(compute("c2st_1nn", a, b, n_boot=50).value - 0.5) <= 0.05
    noise = torch.rand(600, 6, generator=gen(27), dtype=torch.float64) * 20 + 10
    assert compute("c2st_1nn", a, noise, n_boot=50).value >= 0.99
    assert abs(compute("c2st_net", a, b, n_boot=50, steps=150).value - 0.5) <= 0.07
    assert compute("c2st_net", a, gauss(600, 6, 28, shift=1.0), n_boot=50, steps=150).value >= 0.9


def test_c2st_1nn_on_real_images_vs_noise(mnist_train):
    perm = torch.randperm(len(mnist_train), generator=gen(29))[:600]  # the split is sorted by class
    x = mnist_train.images[perm].flatten(1).double()
    noise = torch.rand(300, x.shape[1], generator=gen(29), dtype=torch.float64) * 2 - 1
    assert abs(compute("c2st_1nn", x[:300], x[300:], n_boot=0).value - 0.5) <= 0.05
    assert compute("c2st_1nn", x[:300], noise, n_boot=0).value >= 0.99


def test_ddm_orders_train_vs_noise(mnist_train):
    from ganreport import data

    all_test = data.load("mnist", "test").images.flatten(1)
    order = torch.randperm(len(all_test), generator=gen(31))  # the splits are sorted by class
    test, held = all_test[order[:400]], all_test[order[400:800]]
    train = mnist_train.images[torch.randperm(len(mnist_train), generator=gen(32))[:400]].flatten(1)
    noise = torch.rand(400, train.shape[1], generator=gen(30)) * 2 - 1
    good = compute("ddm", test, train, distance="euclidean", n_boot=0).value
    bad = compute("ddm", test, noise, distance="euclidean", n_boot=0).value
    assert good < bad
    # eq. 3.5: a copy of the training set scores below held-out real data, noise far above
    copy = compute("ddm_train", test, train, reference=train, distance="euclidean", n_boot=0).value
    fresh = compute("ddm_train", test, held, reference=train, distance="euclidean", n_boot=0).value
    worse = compute("ddm_train", test, noise, reference=train, distance="euclidean", n_boot=0).value
    assert copy < fresh < worse


def test_ddm_chunked_equals_unchunked():
    t, g = gauss(257, 10, 31) * 3, gauss(199, 10, 32, shift=1.0) * 3
    full = compute("ddm", t, g, chunk=10**6, n_boot=0).value
    for chunk in (1, 7, 64):
        assert compute("ddm", t, g, chunk=chunk, n_boot=0).value == pytest.approx(full, rel=1e-6, abs=1e-6)
    per_a = log_mean_exp_neg_dist(t, g, chunk=5)
    per_b = log_mean_exp_neg_dist(t, g, chunk=1000)
    assert torch.allclose(per_a, per_b, rtol=0, atol=1e-9)
    r = gauss(50, 10, 33)
    a = compute("ddm_train", t, g, reference=r, chunk=3, n_boot=0).value
    b = compute("ddm_train", t, g, reference=r, chunk=None, n_boot=0).value
    assert a == pytest.approx(b, abs=1e-9)


def test_ddm_is_stable_for_far_apart_sets():
    # exp(-D) underflows for every pair; log-sum-exp must still give the right finite answer
    t = torch.zeros(3, 2, dtype=torch.float64)
    g = torch.full((4, 2), 100.0, dtype=torch.float64)
    assert compute("ddm", t, g, n_boot=0).value == pytest.approx(0.5 * 2 * 100.0**2, rel=1e-12)


@pytest.mark.parametrize("name,kw", [("precision", {}), ("recall", {}), ("density", {}), ("coverage", {}),
                                     ("mmd", {"n_blocks": 0}), ("mmd_poly", {"n_blocks": 0}),
                                     ("c2st_1nn", {"n_boot": 0}), ("ddm", {"n_boot": 0})])
def test_chunk_size_does_not_change_results(name, kw):
    real, fake = gauss(130, 6, 34), gauss(110, 6, 35, shift=0.3)
    vals = [compute(name, real, fake, chunk=c, **kw).value for c in (1, 17, 10_000)]
    assert max(vals) - min(vals) <= 1e-10 * max(1.0, abs(vals[0]))


def test_prdc_per_sample_shapes_and_ranges():
    real, fake = gauss(50, 4, 36), gauss(40, 4, 37)
    per = prdc_per_sample(real, fake, k=5)
    assert per["precision"].shape == (40,) and per["recall"].shape == (50,)
    assert set(per["coverage"].unique().tolist()) <= {0.0, 1.0}
    assert (per["density"] >= 0).all()


# --------------------------------------------------------------------------- image quality
def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity

    g = gen(38)
    for c in (1, 3):
        a = torch.rand(3, c, 28, 28, generator=g, dtype=torch.float64)
        b = (a + 0.2 * torch.randn(3, c, 28, 28, generator=g, dtype=torch.float64)).clamp(0, 1)
        ours = ssim(a, b)
        for i in range(3):
            ref = structural_similarity(a[i].numpy(), b[i].numpy(), gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=1.0, channel_axis=0)
            assert float(ours[i]) == pytest.approx(ref, abs=1e-9)


def test_laplacian_variance_matches_scipy():
    from scipy.ndimage import laplace

    x = torch.rand(4, 1, 20, 20, generator=gen(39), dtype=torch.float64) * 2 - 1
    ref = [float(np.var(laplace((x[i, 0].numpy() + 1) / 2)[1:-1, 1:-1])) for i in range(4)]
    assert np.allclose(laplacian_variance(x).numpy(), ref, rtol=1e-10)


def test_noise_estimate_known_sigma_and_blur_lowers_sharpness():
    g = gen(40)
    for sigma in (0.02, 0.05, 0.1):  # in [0, 1] intensity units
        img = 0.5 + sigma * torch.randn(8, 1, 64, 64, generator=g, dtype=torch.float64)
        est = noise_sigma(img * 2 - 1)
        assert float(est.mean()) == pytest.approx(sigma, rel=0.05)
    from ganreport.metrics.validate import corrupt

    x = torch.rand(6, 1, 28, 28, generator=g) * 2 - 1
    assert (laplacian_variance(corrupt(x, "blur", 1.5)) < laplacian_variance(x)).all()


def test_ssim_nn_and_memorization_detect_copies(mnist_train):
    from ganreport import data

    def pick(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:  # splits are sorted by class
        return images[torch.randperm(len(images), generator=gen(seed))[:n]]

    train = pick(mnist_train.images, 1000, 1)
    held = pick(data.load("mnist", "test").images, 300, 2)
    copies = train[:100]
    res = compute("ssim_nn", train, copies, n_boot=0)
    assert res.value == pytest.approx(1.0, abs=1e-9)
    assert (res.extra["nn_index"] == np.arange(100)).all()
    mem_copy = compute("memorization", train, copies, heldout=held, n_boot=20)
    assert mem_copy.value == pytest.approx(0.0, abs=1e-6) and mem_copy.extra["frac_close"] == 1.0
    fresh = pick(data.load("mnist", "val").images, 300, 3)
    mem_fresh = compute("memorization", train, fresh, heldout=held, n_boot=20)
    assert 0.85 < mem_fresh.value < 1.15 and mem_fresh.ci_low < mem_fresh.ci_high


# --------------------------------------------------------------------------- critic statistics
def test_critic_statistics():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0])
    f = torch.tensor([-1.0, 0.0, 1.0])
    assert compute("critic_real", r, f).value == pytest.approx(2.5)
    assert compute("critic_fake", r, f).value == pytest.approx(0.0)
    assert compute("critic_gap", r, f).value == pytest.approx(2.5)
    assert compute("critic_offset", r, f).value == pytest.approx(1.25)
    assert compute("critic_gap", r[:, None].numpy(), f.numpy()).value == pytest.approx(2.5)  # (N, 1) and numpy


# --------------------------------------------------------------------------- CIs, determinism, rows
def test_results_have_cis_and_are_deterministic():
    real, fake = gauss(120, 5, 41), gauss(100, 5, 42, shift=0.2)
    opts = {"c2st_net": {"steps": 60}, "kid": {"num_subsets": 20, "subset_size": 50}}
    for name in ("fid", "kid", "precision", "mmd", "c2st_1nn", "c2st_net", "ddm"):
        kw = opts.get(name, {})
        a, b = compute(name, real, fake, seed=3, **kw), compute(name, real, fake, seed=3, **kw)
        assert (a.value, a.ci_low, a.ci_high) == (b.value, b.ci_low, b.ci_high), name
        assert a.ci_low <= a.value <= a.ci_high, (name, a)
        assert a.n == 100 and a.direction == METRICS.get(name).direction
    c, d = compute("ddm", real, fake, seed=1), compute("ddm", real, fake, seed=2)
    assert c.value == d.value and (c.ci_low, c.ci_high) != (d.ci_low, d.ci_high)


def test_result_row_has_design_fields():
    from ganreport.results import FIELDS

    row = compute("ddm", gauss(20, 3, 43), gauss(20, 3, 44)).row("dcgan", profile="smoke", feature="x", step=5)
    assert set(FIELDS) <= set(row) and row["metric"] == "ddm" and row["direction"] == "lower"
    assert isinstance(compute("fid", gauss(20, 3, 43), gauss(20, 3, 44), n_boot=0), Result)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("real,fake,match", [
    (torch.zeros(10, 3), torch.zeros(10, 4), "differ in shape"),
    (torch.zeros(1, 3), torch.zeros(10, 3), "at least 2"),
    (torch.zeros(10, 3), torch.zeros(0, 3), "empty"),
    (torch.zeros(10, 3), torch.tensor([[0.0, float("nan"), 1.0]] * 5), "NaN"),
    (torch.zeros(10, 3), torch.tensor([[0.0, float("inf"), 1.0]] * 5), "NaN or inf"),
    (torch.zeros(10), torch.zeros(10, 3), "2-D"),
    (np.zeros((10, 3)), np.array([["a", "b", "c"]] * 4), "real numbers|numeric"),
    (None, torch.zeros(5, 3), "missing"),
])
def test_bad_feature_input_raises(real, fake, match):
    for name in ("fid", "ddm", "mmd"):
        with pytest.raises(DataError, match=match):
            compute(name, real, fake)


def test_bad_options_and_names_raise():
    x = gauss(20, 3, 45)
    with pytest.raises(ConfigError, match="unknown metric"):
        compute("fjd", x, x)
    with pytest.raises(ConfigError, match="no option"):
        compute("fid", x, x, bootstraps=3)
    with pytest.raises(ConfigError, match="reference"):
        compute("ddm_train", x, x)
    with pytest.raises(ConfigError, match="kernel"):
        compute("mmd", x, x, kernel="laplace")
    with pytest.raises(ConfigError, match="distance"):
        compute("ddm", x, x, distance="cosine")
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        compute("ssim_nn", x, x)
    with pytest.raises(ConfigError, match="heldout"):
        compute("memorization", torch.zeros(4, 1, 12, 12), torch.zeros(4, 1, 12, 12))
    with pytest.raises(DataError, match="differ in shape"):
        compute("ddm_train", x, x, reference=gauss(20, 4, 46))
    with pytest.raises(DataError, match="NaN"):
        compute("is", None, torch.tensor([[float("nan"), 1.0]] * 3))


def test_thin_ladder_keeps_clean_and_strongest_levels():
    from ganreport.errors import ConfigError
    from ganreport.metrics import validate

    assert validate.thin_ladder(len(validate.LADDER["noise"])) == validate.LADDER
    three = validate.thin_ladder(3)
    for kind, strengths in three.items():
        assert len(strengths) == 3
        assert strengths[0] == 0.0 and strengths[-1] == validate.LADDER[kind][-1]
        assert list(strengths) == sorted(strengths)
    with pytest.raises(ConfigError, match="at least 2 levels"):
        validate.thin_ladder(1)
