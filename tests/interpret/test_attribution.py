"""Interpretability: attribution methods, their measures, latent paths, PPL, neighbours, sliders."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganreport import io, train
from ganreport.errors import CheckpointError, ConfigError, DataError
from ganreport.interpret import latent, lime, measures, neighbours, saliency
from ganreport.models import Discriminator, Generator, build


# ----------------------------------------------------------------------------- toy models
class RegionMeanD(Discriminator):
    """D(x) = mean of x over a known pixel region (all channels)."""

    def __init__(self, mask: torch.Tensor, channels: int = 1):
        super().__init__()
        self.img_shape = (channels, *mask.shape)
        self.register_buffer("mask", mask.float())
        self.dummy = nn.Parameter(torch.zeros(()))  # a parameter, so the device is known

    def forward(self, x):
        return (x * self.mask).sum((1, 2, 3)) / (self.mask.sum() * x.shape[1]) + 0 * self.dummy


class LinearD(Discriminator):
    """D(x) = <w, x> (no bias)."""

    def __init__(self, img_shape=(1, 8, 8), seed=0):
        super().__init__()
        self.img_shape = img_shape
        self.w = nn.Parameter(torch.randn(img_shape, generator=torch.Generator().manual_seed(seed)))

    def forward(self, x):
        return (x * self.w).sum((1, 2, 3))

    def layers(self):
        return {"w": self}


class LinearG(Generator):
    """G(z) = A z reshaped to (1, 4, 4); linear, so path lengths have closed forms."""

    def __init__(self, z_dim=3, seed=0):
        super().__init__()
        self.z_dim, self.img_shape = z_dim, (1, 4, 4)
        self.A = nn.Parameter(torch.randn(16, z_dim, generator=torch.Generator().manual_seed(seed)) * 0.3)

    def forward(self, z):
        return (z @ self.A.T).view(-1, 1, 4, 4)


@pytest.fixture(scope="module")
def small_dcgan():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        G, D, _ = build("dcgan", (1, 28, 28), g_width=8, d_width=8, z_dim=16)
    return G.eval(), D.eval()


@pytest.fixture(scope="module")
def small_stylegan():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        G, D, _ = build("stylegan", (1, 28, 28), g_width=4, d_width=8, z_dim=16, w_dim=16, map_depth=2)
    with torch.no_grad():  # a w_avg away from zero, so truncation does something visible
        G.w_avg.copy_(G.mapping_net(torch.randn(64, 16, generator=torch.Generator().manual_seed(1))).mean(0))
    return G.eval(), D.eval()


# ----------------------------------------------------------------------------- interpolation
def naive_slerp(a, b, t):
    a, b = np.asarray(a, float), np.asarray(b, float)
    omega = np.arccos(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1, 1))
    return np.sin((1 - t) * omega) / np.sin(omega) * a + np.sin(t * omega) / np.sin(omega) * b


def test_slerp_keeps_unit_norm_and_reproduces_endpoints():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(64, generator=g), torch.randn(64, generator=g)
    z0, z1 = z0 / z0.norm(), z1 / z1.norm()
    for n in (2, 3, 9, 50):
        path = latent.slerp(z0, z1, n)
        assert path.shape == (n, 64)
        assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
        np.testing.assert_allclose(latent.path_norms(path).numpy(), 1.0, atol=1e-6)
    # lerp leaves the sphere in between (|midpoint| = cos(W/2) < 1 for non-parallel endpoints)
    mid = latent.lerp(z0, z1, 3)[1]
    omega = math.acos(float(z0 @ z1))
    assert float(mid.norm()) == pytest.approx(math.cos(omega / 2), rel=1e-5)


def test_slerp_matches_white_formula_for_unnormalised_endpoints():
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(10, generator=g, dtype=torch.float64) * 2, torch.randn(10, generator=g, dtype=torch.float64)
    path = latent.slerp(z0, z1, 7)
    for i, t in enumerate(np.linspace(0, 1, 7)):
        np.testing.assert_allclose(path[i].numpy(), naive_slerp(z0, z1, t), rtol=1e-12, atol=1e-12)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    lp = latent.lerp(z0, z1, 5)
    np.testing.assert_allclose(lp[2].numpy(), ((z0 + z1) / 2).numpy(), rtol=1e-12)


def test_interpolation_needs_two_steps(small_stylegan):
    z0, z1 = torch.ones(4), torch.arange(4.0)
    for fn in (latent.lerp, latent.slerp):
        for n in (0, 1, 2.5):
            with pytest.raises(ConfigError, match="at least 2 steps"):
                fn(z0, z1, n)
    with pytest.raises(ConfigError, match="at least 2 steps"):
        latent.circle_through(z0, z1, torch.tensor([0.0, 2.0, 0.0, 1.0]), 1)
    G, _ = small_stylegan
    with pytest.raises(ConfigError, match="at least 2 steps"):
        latent.w_interpolation(G, torch.zeros(16), torch.ones(16), 1)
    with pytest.raises(DataError, match="opposite"):
        latent.slerp(z0, -z0, 5)
    with pytest.raises(DataError, match="same shape"):
        latent.slerp(z0, torch.ones(5), 5)


def test_circle_through_three_points():
    g = torch.Generator().manual_seed(2)
    a, b, c = (torch.randn(32, generator=g, dtype=torch.float64) for _ in range(3))
    path, keys = latent.circle_through(a, b, c, 12)
    assert len(path) == 3 * 11 + 1
    for k, p in zip(keys, (a, b, c, a)):
        assert torch.equal(path[k], p)
    # all points equidistant from the circumcentre, in the plane of the three points
    u, v = b - a, c - a
    basis = torch.linalg.qr(torch.stack([u, v], 1)).Q
    rel = path - a
    np.testing.assert_allclose((rel - rel @ basis @ basis.T).norm(dim=1).numpy(), 0, atol=1e-9)
    centre = path[:-1].mean(0)  # not the centre in general, so solve for it from three path points
    gram = torch.stack([torch.stack([u @ u, u @ v]), torch.stack([u @ v, v @ v])])
    al, be = torch.linalg.solve(gram, torch.stack([u @ u, v @ v]) / 2)
    centre = a + al * u + be * v
    radii = (path - centre).norm(dim=1)
    np.testing.assert_allclose(radii.numpy(), float(radii[0]), rtol=1e-9)
    with pytest.raises(DataError, match="collinear"):
        latent.circle_through(a, 2 * a, 3 * a, 5)


# ----------------------------------------------------------------------------- saliency
def test_smoothgrad_with_zero_noise_equals_plain_saliency(small_dcgan):
    G, D = small_dcgan
    x = G(torch.randn(3, 16, generator=torch.Generator().manual_seed(0))).detach()
    plain = saliency.gradient(D, x)
    sg0 = saliency.smoothgrad(D, x, sigma=0.0, n_samples=6)
    torch.testing.assert_close(sg0, plain, rtol=1e-5, atol=1e-9)
    # plain saliency is |dD/dx| from autograd
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(xr).sum(), xr)
    torch.testing.assert_close(plain, grad.abs(), rtol=1e-5, atol=1e-9)


def test_smoothgrad_equals_naive_loop_and_is_seeded(small_dcgan):
    G, D = small_dcgan
    x = G(torch.randn(2, 16, generator=torch.Generator().manual_seed(1))).detach()
    n, sigma = 5, 0.3
    sg = saliency.smoothgrad(D, x, sigma=sigma, n_samples=n, seed=7, batch_size=None)
    # naive: the same noise draws (captum: torch.normal over the repeat_interleave'd batch)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        noise = torch.normal(0, torch.full((2 * n, *x.shape[1:]), sigma))
    noisy = x.repeat_interleave(n, 0) + noise
    grads = []
    for i in range(len(noisy)):
        xi = noisy[i:i + 1].clone().requires_grad_(True)
        grads.append(torch.autograd.grad(D(xi).sum(), xi)[0].abs())
    naive = torch.cat(grads).view(2, n, *x.shape[1:]).mean(1)
    torch.testing.assert_close(sg, naive, rtol=1e-5, atol=1e-8)
    before = torch.random.get_rng_state()
    assert torch.equal(saliency.smoothgrad(D, x, sigma=sigma, n_samples=n, seed=7), sg)
    assert torch.equal(torch.random.get_rng_state(), before), "global RNG must be left untouched"
    assert not torch.equal(saliency.smoothgrad(D, x, sigma=sigma, n_samples=n, seed=8), sg)


def test_integrated_gradients_completeness(small_dcgan):
    G, D = small_dcgan
    x = G(torch.randn(3, 16, generator=torch.Generator().manual_seed(2))).detach()
    ig = saliency.integrated_gradients(D, x, baseline=0.0, n_steps=64)
    with torch.no_grad():
        gap = D(x) - D(torch.zeros_like(x))
    np.testing.assert_allclose(ig.sum((1, 2, 3)).numpy(), gap.numpy(), rtol=2e-2, atol=1e-4)
    # for a linear D, IG = (x - b) * w exactly
    Dl = LinearD((1, 8, 8))
    xl = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(saliency.integrated_gradients(Dl, xl), (xl * Dl.w).detach(), rtol=1e-5, atol=1e-6)


def test_to_map_reductions():
    a = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]]]])  # (1, 2, 1, 2)
    assert saliency.to_map(a, "abs_sum").tolist() == [[[4.0, 2.5]]]
    assert saliency.to_map(a, "abs_max").tolist() == [[[3.0, 2.0]]]
    assert saliency.to_map(a, "sum").tolist() == [[[-2.0, -1.5]]]
    with pytest.raises(ConfigError, match="known"):
        saliency.to_map(a, "mean")


# ----------------------------------------------------------------------------- LIME
def test_lime_recovers_superpixel_contributions_of_a_linear_d():
    D = LinearD((1, 8, 8), seed=4)
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    a = lime.lime(D, x, n_samples=120, mask="grid", cell=4, surrogate="linear", baseline=0.0, seed=0)
    cells = lime.grid_mask(8, 8, 4)
    for k in range(4):
        expected = float((x[0, 0] * D.w[0].detach())[cells == k].sum())
        vals = a[0, 0][cells == k]
        assert torch.allclose(vals, torch.full_like(vals, expected), rtol=1e-4, atol=1e-4)
    # seeded: same seed, same result; another seed, other draws (ridge makes them differ slightly)
    r1 = lime.lime(D, x, n_samples=40, mask="grid", cell=4, seed=1)
    assert torch.equal(r1, lime.lime(D, x, n_samples=40, mask="grid", cell=4, seed=1))
    assert not torch.equal(r1, lime.lime(D, x, n_samples=40, mask="grid", cell=4, seed=2))


def test_slic_masks_are_contiguous_labels(small_dcgan):
    G, _ = small_dcgan
    x = G(torch.randn(2, 16, generator=torch.Generator().manual_seed(0))).detach()
    m = lime.feature_masks(x, "slic", n_segments=16)
    assert m.shape == (2, 28, 28)
    for mi in m:
        assert sorted(torch.unique(mi).tolist()) == list(range(int(mi.max()) + 1))
        assert 4 <= int(mi.max()) + 1 <= 40
    g = lime.grid_mask(28, 28, 7)
    assert torch.unique(g).tolist() == list(range(16)) and (g == 0).sum() == 49
    with pytest.raises(ConfigError, match="known"):
        lime.feature_masks(x, "quickshift")


# ----------------------------------------------------------------------------- measures
def test_deletion_curve_finds_the_known_region_first():
    h = w = 10
    region = torch.zeros(h, w, dtype=torch.bool)
    region[2:5, 6:9] = True  # 9 pixels
    D = RegionMeanD(region)
    x = torch.rand(6, 1, h, w, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.5  # > 0 everywhere
    maps = saliency.to_map(saliency.gradient(D, x))
    order = measures.pixel_order(maps)
    for o in order:
        assert set(o[:9].tolist()) == set(torch.nonzero(region.flatten()).flatten().tolist())
    cur = measures.perturbation_curve(D, x, maps, "deletion", n_steps=100, baseline=0.0, n_random=8, seed=0)
    # with the map's order D reaches the baseline score 0 once 9 % of the pixels are gone
    assert np.allclose(cur.salient[:, 9:], 0.0, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(cur.salient[:, 0], D(x).numpy(), rtol=1e-6)
    # random order removes the region at rate f, so its AUC is about s0 / 2, the map's about 0.95 s0
    assert (cur.auc > cur.auc_random).all() and 1.7 < cur.auc_ratio < 2.2
    # the AUC is the trapezoid rule on |s(f) - s(0)|
    naive = [sum((abs(s[i] - s[0]) + abs(s[i + 1] - s[0])) / 2 * 0.01 for i in range(100)) for s in cur.salient]
    np.testing.assert_allclose(cur.auc, naive, rtol=1e-9)
    ins = measures.perturbation_curve(D, x, maps, "insertion", n_steps=100, baseline=0.0, n_random=8, seed=0)
    with torch.no_grad():
        np.testing.assert_allclose(ins.salient[:, 9:], D(x)[:, None].numpy().repeat(92, 1), rtol=1e-5)
    assert ins.auc_ratio > 1.5


def test_concentration_known_answers():
    uniform = torch.ones(2, 10, 10)
    np.testing.assert_allclose(measures.concentration(uniform).numpy(), 0.1, rtol=1e-6)
    one_hot = torch.zeros(1, 10, 10)
    one_hot[0, 3, 4] = -5.0
    assert float(measures.concentration(one_hot)) == pytest.approx(1.0)
    m = torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(0)) - 0.5
    k = round(0.1 * 63)
    naive = [np.sort(np.abs(mi.numpy().ravel()))[::-1][:k].sum() / np.abs(mi.numpy()).sum() for mi in m]
    np.testing.assert_allclose(measures.concentration(m).numpy(), naive, rtol=1e-6)
    assert math.isnan(float(measures.concentration(torch.zeros(1, 4, 4))))


def test_randomisation_sanity_check(small_dcgan):
    G, D = small_dcgan
    Dr = measures.randomized_copy(D, seed=3)
    changed = [not torch.equal(a, b) for (n, a), (_, b) in zip(D.named_parameters(), Dr.named_parameters())
               if n.endswith("weight") and a.ndim == 4]
    assert all(changed)
    assert all(torch.equal(a, b) for a, b in zip(Dr.parameters(), measures.randomized_copy(D, seed=3).parameters()))
    top = measures.randomized_copy(D, seed=3, top_blocks=1)
    first = list(D.layers())[0]
    assert torch.equal(dict(top.named_parameters())[f"net.{first}.0.weight"], dict(D.named_parameters())[f"net.{first}.0.weight"])
    x = G(torch.randn(3, 16, generator=torch.Generator().manual_seed(0))).detach()
    m = saliency.to_map(saliency.gradient(D, x))
    same = measures.map_similarity(m, m)
    np.testing.assert_allclose(same["ssim"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(same["spearman"], 1.0, rtol=1e-9)
    res = measures.sanity_check(D, x, "gradient", cascade=True)
    assert [r["blocks"] for r in res] == [1, 2, "all"]
    assert all(r["ssim"].shape == (3,) and np.all(r["spearman"] < 0.999) for r in res)
    # for a linear D the gradient map is |w| for every input: randomising w decorrelates it
    Dl = LinearD((1, 8, 8))
    xl = torch.randn(4, 1, 8, 8)
    r = measures.sanity_check(Dl, xl, "gradient")[-1]
    assert np.all(np.abs(r["spearman"]) < 0.5)


def test_measure_rows_are_tidy(small_dcgan):
    G, D = small_dcgan
    real = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fake = G(torch.randn(2, 16, generator=torch.Generator().manual_seed(0))).detach()
    rep = measures.measure_attributions("dcgan", D, real, fake, "gradient", n_steps=5, n_random=2,
                                        profile="smoke", dataset="mnist")
    names = {r["metric"] for r in rep.rows}
    assert {"attr_concentration_real", "attr_concentration_fake", "attr_deletion_auc_ratio",
            "attr_insertion_auc_ratio", "attr_sanity_ssim", "attr_sanity_spearman"} <= names
    for r in rep.rows:
        assert r["section"] == "qualitative" and r["feature"] == "gradient" and r["n"] == (2 if "concentration" in r["metric"] else 4)
        assert r["ci_low"] is None or r["ci_low"] <= r["value"] <= r["ci_high"]


# ----------------------------------------------------------------------------- bad input
def test_bad_images_raise_clear_errors(small_dcgan):
    _, D = small_dcgan
    for bad, msg in ((torch.zeros(2, 1, 32, 32), "expects"), (torch.zeros(5, 28), "B, C, H, W"),
                     (torch.zeros(2, 3, 28, 28), "expects"), (torch.zeros(1, 28, 28), "single image")):
        for fn in (saliency.gradient, saliency.smoothgrad, saliency.integrated_gradients, lime.lime):
            with pytest.raises(DataError, match=msg):
                fn(D, bad)
    with pytest.raises(DataError, match="match the images"):
        measures.perturbation_curve(D, torch.zeros(2, 1, 28, 28), torch.zeros(2, 14, 14))
    with pytest.raises(DataError, match="floating point"):
        saliency.gradient(D, torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="sigma"):
        saliency.smoothgrad(D, torch.zeros(1, 1, 28, 28), sigma=-1.0)


def test_unknown_architecture_checkpoint_is_a_clear_error(tmp_path):
    ck = tmp_path / "checkpoints" / "step_000010.safetensors"
    io.save_checkpoint(ck, {"G.w": torch.zeros(2)}, {"model": "nope", "img_shape": [1, 28, 28], "params": {}})
    with pytest.raises(CheckpointError, match="unknown architecture 'nope'"):
        train.load_generator(ck)
    with pytest.raises(CheckpointError, match="unknown architecture"):
        train.load_discriminator(tmp_path)  # the folder form finds the same checkpoint


# ----------------------------------------------------------------------------- latent space
def test_ppl_lerp_of_a_linear_generator_has_a_closed_form():
    G = LinearG()
    res = latent.perceptual_path_length(G, None, n=40, space="z", interp="lerp", seed=3, trim=False)
    g = torch.Generator().manual_seed(3)
    z1, z2 = G.sample_z(40, g), G.sample_z(40, g)
    exact = ((z2 - z1) @ G.A.detach().T).double().pow(2).sum(1).numpy()  # |A (z2 - z1)|^2 for every t
    np.testing.assert_allclose(res.distances, exact, rtol=1e-2)  # float32 G: round-off ~1e-3 at eps = 1e-4
    assert res.value == pytest.approx(exact.mean(), rel=2e-3)
    res64 = latent.perceptual_path_length(G.double(), None, n=40, space="z", interp="lerp", seed=3, trim=False)
    np.testing.assert_allclose(res64.distances, exact, rtol=1e-6)
    trimmed = latent.perceptual_path_length(G, None, n=40, space="z", interp="lerp", seed=3)
    kept = exact[(exact >= np.percentile(exact, 1)) & (exact <= np.percentile(exact, 99))]
    assert trimmed.n == len(kept) == 38 and trimmed.value == pytest.approx(kept.mean(), rel=2e-3)


def test_ppl_slerp_matches_naive_finite_difference():
    G = LinearG(z_dim=5).double()
    res = latent.perceptual_path_length(G, None, n=12, interp="slerp", seed=4, trim=False, eps=1e-4)
    g = torch.Generator().manual_seed(4)
    z1, z2 = G.sample_z(12, g), G.sample_z(12, g)
    t = torch.rand(12, generator=g, dtype=torch.float64) * (1 - 1e-4)
    A = G.A.detach().double().numpy()
    naive = []
    for i in range(12):
        p0, p1 = naive_slerp(z1[i], z2[i], float(t[i])), naive_slerp(z1[i], z2[i], float(t[i]) + 1e-4)
        naive.append(np.sum((A @ p1 - A @ p0) ** 2) / 1e-8)
    np.testing.assert_allclose(res.distances, naive, rtol=1e-6)
    feats = latent.perceptual_path_length(G, lambda x: {"f": 2 * x.flatten(1)}, n=12, interp="slerp", seed=4, trim=False)
    np.testing.assert_allclose(feats.distances, 4 * res.distances, rtol=1e-6)


def test_sweeps_and_attribute_vectors():
    G = LinearG(z_dim=3)
    z = torch.tensor([0.5, -1.0, 2.0])
    sw = latent.dimension_sweep(G, z, [0, 2], [-1.0, 0.0, 1.0])
    assert sw.shape == (2, 3, 1, 4, 4)
    zz = z.clone()
    zz[2] = 1.0
    torch.testing.assert_close(sw[1, 2], G(zz[None])[0].detach())
    eff = latent.sweep_effect(G, z[None], (-2.0, 2.0))
    np.testing.assert_allclose(eff.numpy(), (16 * G.A.detach().double().pow(2)).mean(0).numpy(), rtol=1e-5)
    # a "classifier" that reads the sign of z[0] off the image (pixel values are A z)
    A = G.A.detach()
    classify = lambda imgs: (torch.linalg.lstsq(A, imgs.flatten(1).T).solution[0] > 0).long()  # noqa: E731
    av = latent.attribute_vectors(G, classify, n=2000, seed=0)
    v = av.vector(0, 1)
    assert v[0] == pytest.approx(2 * math.sqrt(2 / math.pi), abs=0.1) and v[1:].abs().max() < 0.15
    assert sum(av.counts.values()) == 2000
    imgs = latent.apply_attribute(G, torch.zeros(2, 3), v, (0.0, 1.0))
    torch.testing.assert_close(imgs[:, 1], G(v[None].expand(2, -1)).detach())
    with pytest.raises(ConfigError, match="labels seen"):
        av.vector(0, 7)


def test_stylegan_w_interpolation_mixing_and_truncation(small_stylegan):
    G, _ = small_stylegan
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 16, generator=g)
    wi = latent.w_interpolation(G, z[0], z[1], 4)
    with torch.no_grad():
        ends = G(z[:2])
    torch.testing.assert_close(wi["images"][[0, -1]], ends, rtol=1e-4, atol=1e-5)
    assert latent.style_ranges(G.num_ws)["coarse"][0] == 0 and latent.style_ranges(7)["fine"] == [5, 6]
    mix = latent.style_mixing(G, z[:2], z[:2])
    for r in ("coarse", "middle", "fine"):
        assert mix[r].shape == (2, 2, 1, 28, 28)
        torch.testing.assert_close(mix[r][0, 0], mix["a"][0])  # mixing a source with itself changes nothing
    assert not torch.allclose(mix["coarse"][0, 1], mix["a"][0])
    strip = latent.truncation_strip(G, z, (0.0, 1.0))
    torch.testing.assert_close(strip[0, 0], strip[1, 0])  # psi = 0: every z gives the image of w_avg
    torch.testing.assert_close(strip[:, 1], G(z).detach())
    ppl = latent.perceptual_path_length(G, None, n=16, space="w", interp="lerp", seed=0)
    assert ppl.value > 0 and ppl.space == "w"
    with pytest.raises(ConfigError, match="W uses lerp"):
        latent.perceptual_path_length(G, None, n=16, space="w", interp="slerp")


def test_stylegan_only_functions_refuse_dcgan(small_dcgan):
    G, _ = small_dcgan
    for fn in (lambda: latent.style_mixing(G, torch.zeros(1, 16), torch.zeros(1, 16)),
               lambda: latent.truncation_strip(G, torch.zeros(1, 16)),
               lambda: latent.perceptual_path_length(G, None, n=4, space="w", interp="lerp")):
        with pytest.raises(ConfigError, match="StyleGAN"):
            fn()


# ----------------------------------------------------------------------------- neighbours
def test_knn_agrees_with_sklearn_and_is_chunk_invariant():
    from sklearn.neighbors import NearestNeighbors

    g = torch.Generator().manual_seed(0)
    ref, q = torch.randn(57, 12, generator=g), torch.randn(13, 12, generator=g)
    d, i = neighbours.knn(q, ref, k=4, query_chunk=5, ref_chunk=7)
    sk_d, sk_i = NearestNeighbors(n_neighbors=4).fit(ref.numpy()).kneighbors(q.numpy())
    np.testing.assert_allclose(d.numpy(), sk_d, rtol=1e-5)
    assert (i.numpy() == sk_i).all()
    d2, i2 = neighbours.knn(q, ref, k=4, query_chunk=100, ref_chunk=1000)
    assert torch.equal(i, i2) and torch.allclose(d, d2)
    with pytest.raises(ConfigError, match="k must be"):
        neighbours.knn(q, ref, k=0)


def test_nearest_neighbours_finds_copies_in_pixels_and_features():
    g = torch.Generator().manual_seed(1)
    train_imgs = torch.rand(30, 1, 6, 6, generator=g) * 2 - 1
    gen = train_imgs[[4, 17]] + 0.01
    nn_pix = neighbours.nearest_neighbours(gen, train_imgs, k=2)
    assert nn_pix.indices[:, 0].tolist() == [4, 17] and nn_pix.space == "pixels"
    np.testing.assert_allclose(nn_pix.distances[:, 0].numpy(), 0.01 * 6, rtol=1e-4)
    nn_f = neighbours.nearest_neighbours(gen, train_imgs, k=1, feature_fn=lambda x: x.mean((2, 3)), space="mean")
    assert nn_f.distances.shape == (2, 1) and nn_f.space == "mean"
    pre = neighbours.nearest_neighbours(gen, train_imgs, k=1, feature_fn=lambda x: x.mean((2, 3)),
                                        train_features=train_imgs.mean((2, 3)))
    assert torch.equal(pre.indices, nn_f.indices) and torch.allclose(pre.distances, nn_f.distances)
    with pytest.raises(DataError, match="expects"):
        neighbours.nearest_neighbours(gen, torch.zeros(3, 1, 5, 5))


# ----------------------------------------------------------------------------- figures and sliders
def test_sliders_and_strips():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganreport import viz

    frames = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 1, 6, 6).contiguous()
    html = viz.html_slider(frames, [f"t={i}" for i in range(5)], title="demo", scale=2)
    assert html.data.count("<img") == 5 and "type='range'" in html.data and "max='4'" in html.data
    assert html.data == viz.html_slider(frames, [f"t={i}" for i in range(5)], title="demo", scale=2).data
    fig = viz.frame_strip(frames, [f"t={i}" for i in range(5)])
    assert len(fig.axes) == 5
    plt.close(fig)
    box = viz.widget_slider(frames)
    slider = box.children[0].children[0]
    first = box.children[1].value
    slider.value = 3
    assert box.children[1].value != first and box.children[0].children[1].value == "3"
    with pytest.raises(ValueError, match="labels"):
        viz.html_slider(frames, ["a"])


def test_save_arrays_round_trip(tmp_path):
    from ganreport.interpret import save_arrays

    path = save_arrays(tmp_path / "a.npz", x=torch.arange(3.0), y=np.eye(2))
    with np.load(path) as f:
        assert f["x"].tolist() == [0.0, 1.0, 2.0] and f["y"].shape == (2, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]  # no temporary file left behind
    with pytest.raises(ValueError, match=".npz"):
        save_arrays(tmp_path / "a.npy", x=np.zeros(1))
