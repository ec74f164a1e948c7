"""Architectures: shapes, StyleGAN truncation and style mixing, WGAN-GP penalty, training contract."""

import math

import pytest
import torch
from torch import nn

import _toy
from _toy import tiny_cfg
from ganreport import losses, models, train
from ganreport.errors import ConfigError, TrainingDiverged
from ganreport.models.flops import cost_table, forward_flops
from ganreport.models.stylegan import StyleGenerator

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 32, 32), (3, 28, 28)]
TINY = {
    "dcgan": dict(g_width=4, d_width=4, z_dim=8),
    "stylegan": dict(g_width=4, d_width=4, z_dim=8, w_dim=8, map_depth=2),
    "wgan_gp": dict(g_width=4, d_width=4, z_dim=8),
}


def tiny_kw(name):
    return TINY.get(name, {})


def tiny_data(n=48, shape=(1, 28, 28), seed=0):
    return _toy.tiny_data(n, shape, seed)


def cfg(steps=4, **kw):
    return tiny_cfg(steps, 6, 2, 100, **kw)


def full_state(t):
    out = {}
    for prefix, mod in (("G", t.G), ("D", t.D), ("G_ema", t.G_ema)):
        if mod is not None:
            out |= {f"{prefix}.{k}": v.clone() for k, v in mod.state_dict().items()}
    out["rng"] = t.rng.get_state()
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def style_g(shape=(1, 28, 28), **kw):
    torch.manual_seed(0)
    G = StyleGenerator(shape, z_dim=8, w_dim=8, width=4, **kw)
    with torch.no_grad():  # make the noise and w_avg matter (both start at zero)
        for blk in G.blocks.values():
            for layer in blk.convs:
                layer.noise_strength.fill_(0.5)
        G.w_avg.copy_(torch.randn(8, generator=torch.Generator().manual_seed(5)))
    return G.eval()


# ----------------------------------------------------------------------------- every architecture
@pytest.mark.parametrize("name", models.MODELS.names())
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_every_model(name, shape):
    G, D, _ = models.build(name, shape, **tiny_kw(name))
    z = G.sample_z(3, torch.Generator().manual_seed(0))
    assert z.shape == (3, G.z_dim)
    x = G(z)
    assert x.shape == (3, *shape) and x.abs().max() <= 1
    assert D(x).shape == (3,)
    assert G.train_forward(z, torch.Generator().manual_seed(1)).shape == (3, *shape)
    feats = {}
    for lname, mod in G.layers().items():
        mod.register_forward_hook(lambda m, a, out, lname=lname: feats.__setitem__(lname, out))
    G(z)
    assert len(feats) == len(G.layers()) > 0
    assert all(isinstance(f, torch.Tensor) and f.ndim == 4 and f.shape[0] == 3 for f in feats.values())
    assert len(D.layers()) > 0


@pytest.mark.parametrize("name", ["stylegan", "wgan_gp"])
def test_bad_input(name):
    G, D, _ = models.build(name, (1, 28, 28), **tiny_kw(name))
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(2, G.z_dim + 1))
    with pytest.raises(ValueError, match="images must have shape"):
        D(torch.randn(2, 3, 28, 28))
    with pytest.raises(ConfigError, match="not supported"):
        models.build(name, (1, 30, 30))


# ----------------------------------------------------------------------------- StyleGAN
def test_stylegan_layout():
    G = style_g()
    assert G.num_ws == 6 and list(G.layers()) == ["b7", "b14", "b28"]
    assert dict(G.block_ws) == {"b7": (0,), "b14": (1, 2), "b28": (3, 4)}
    G32 = style_g((3, 32, 32))
    assert G32.num_ws == 8 and list(G32.layers()) == ["b4", "b8", "b16", "b32"]
    z = torch.randn(5, 8)
    ws = G.mapping(z)
    assert ws.shape == (5, G.num_ws, G.w_dim)
    assert torch.equal(G.synthesis(ws), G(z))  # mapping and synthesis compose to forward
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(ws[:, :-1])
    with pytest.raises(ConfigError, match="needs a seeded"):
        G.synthesis(ws, "random")
    with pytest.raises(ConfigError, match="unknown noise_mode"):
        G.synthesis(ws, "loud")
    with pytest.raises(ConfigError, match="style_mixing"):
        StyleGenerator((1, 28, 28), style_mixing=1.5)


def test_modulated_conv_matches_per_sample_weights():
    """Non-fused modulation/demodulation equals convolving each sample with its own weights (eq. 1-3)."""
    from ganreport.models.stylegan import ModulatedConv

    torch.manual_seed(0)
    for kernel, up, demod in [(3, False, True), (4, True, True), (1, False, False), (1, False, True)]:
        conv = ModulatedConv(3, 5, kernel, w_dim=6, demodulate=demod, upsample=up)
        x, w = torch.randn(2, 3, 7, 7), torch.randn(2, 6)
        y = conv(x, w)
        s = conv.affine(w)
        for b in range(2):
            wb = conv.weight * conv.scale * s[b][None, :, None, None]  # modulate: (out, in, k, k)
            if demod:
                wb = wb / torch.sqrt((wb ** 2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
            if up:
                ref = nn.functional.conv_transpose2d(x[b:b + 1], wb.transpose(0, 1), stride=2, padding=1) * 2
            else:
                ref = nn.functional.conv2d(x[b:b + 1], wb, padding=kernel // 2)
            torch.testing.assert_close(y[b:b + 1], ref, rtol=1e-5, atol=1e-5)
        assert y.shape == (2, 5, 14 if up else 7, 14 if up else 7)


def test_truncation_psi0_gives_w_avg_psi1_identity():
    G = style_g()
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    ws0 = G.mapping(z, truncation=0.0)
    torch.testing.assert_close(ws0, G.w_avg.expand(6, G.num_ws, -1), rtol=0, atol=1e-7)
    img0 = G(z, truncation=0.0)
    for i in range(1, 6):  # every z gives the same image at psi = 0
        torch.testing.assert_close(img0[i], img0[0], rtol=0, atol=1e-6)
    w = G.mapping_net(z)
    assert torch.equal(G.mapping(z, truncation=1.0), w[:, None].expand(-1, G.num_ws, -1))
    assert torch.equal(G(z, truncation=1.0), G(z))
    half = G.mapping(z, truncation=0.5)[:, 0]
    torch.testing.assert_close(half, G.w_avg + 0.5 * (w - G.w_avg))
    assert not torch.allclose(G(z)[0], G(z)[1])


def test_w_avg_tracked_in_training_only():
    G = style_g()
    G.w_avg.zero_()
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(2))
    G(z)
    assert torch.count_nonzero(G.w_avg) == 0  # plain forward never updates it
    G.train()
    G.train_forward(z, torch.Generator().manual_seed(0))
    expected = (1 - G.w_avg_beta) * G.mapping_net(z).mean(0)
    torch.testing.assert_close(G.w_avg, expected)


@pytest.mark.parametrize("cutoff", [1, 2, 3, 5])
def test_style_mixing_changes_only_later_layers(cutoff):
    G = style_g()
    g = torch.Generator().manual_seed(3)
    ws_a, ws_b = G.mapping(torch.randn(4, 8, generator=g)), G.mapping(torch.randn(4, 8, generator=g))
    mixed = G.mix_styles(ws_a, ws_b, cutoff)
    assert torch.equal(mixed[:, :cutoff], ws_a[:, :cutoff]) and torch.equal(mixed[:, cutoff:], ws_b[:, cutoff:])

    def block_outputs(ws):
        out = {}
        hooks = [m.register_forward_hook(lambda m, a, o, n=n: out.__setitem__(n, o.clone()))
                 for n, m in G.layers().items()]
        img = G.synthesis(ws)  # const noise: the same noise in both passes
        for h in hooks:
            h.remove()
        return out, img

    fa, img_a = block_outputs(ws_a)
    fm, img_m = block_outputs(mixed)
    for name, idx in G.block_ws.items():
        if max(idx) < cutoff:  # coarse blocks only read styles before the cut-off: unchanged
            assert torch.equal(fa[name], fm[name]), name
        else:
            assert not torch.allclose(fa[name], fm[name]), name
    assert not torch.allclose(img_a, img_m)  # the last ToRGB always reads a mixed style


def test_train_forward_mixes_styles_from_rng():
    """train_forward = synthesis(mix(mapping(z), mapping(z2), cutoff)) with the draws taken from rng."""
    G = style_g(style_mixing=1.0)
    G.train()
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(4))
    rng = torch.Generator().manual_seed(11)
    out = G.train_forward(z, rng)
    rep = torch.Generator().manual_seed(11)
    assert float(torch.rand((), generator=rep)) < 1.0
    cutoff = int(torch.randint(1, G.num_ws, (), generator=rep))
    z2 = torch.randn(3, 8, generator=rep)
    ws = G.mix_styles(G.mapping(z), G.mapping(z2), cutoff)
    ref = G.synthesis(ws, "random", rep)
    torch.testing.assert_close(out, ref)
    no_mix = style_g(style_mixing=0.0).train()
    ref0 = no_mix.synthesis(no_mix.mapping(z), "random", torch.Generator().manual_seed(11))
    torch.testing.assert_close(no_mix.train_forward(z, torch.Generator().manual_seed(11)), ref0)
    with pytest.raises(ConfigError, match="seeded"):
        G.train_forward(z)


def test_stylegan_eval_is_deterministic_and_noise_is_seeded():
    G = style_g()
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(6))
    assert torch.equal(G(z), G(z))
    r1 = G(z, noise_mode="random", rng=torch.Generator().manual_seed(1))
    r1b = G(z, noise_mode="random", rng=torch.Generator().manual_seed(1))
    r2 = G(z, noise_mode="random", rng=torch.Generator().manual_seed(2))
    assert torch.equal(r1, r1b) and not torch.allclose(r1, r2)
    assert not torch.allclose(G(z, noise_mode="none"), G(z))


def test_equalised_lr_scales_at_runtime():
    from ganreport.models.stylegan import EqualLinear

    torch.manual_seed(0)
    lin = EqualLinear(400, 3, lr_mul=0.01)
    assert lin.weight.std().item() == pytest.approx(100, rel=0.1)  # stored N(0, 1/lr_mul²)
    x = torch.randn(2, 400)
    torch.testing.assert_close(lin(x), x @ (lin.weight * 0.01 / 20).t() + lin.bias * 0.01)


# ----------------------------------------------------------------------------- WGAN-GP
def test_gradient_penalty_linear_critic_known_answer():
    """D(x) = w·x has gradient w everywhere, so GP = (‖w‖ − 1)² whatever the interpolates."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=True))
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    w = critic[1].weight.detach().flatten()
    gp = losses.gradient_penalty(lambda x: critic(x).flatten(), real, fake, torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)
    with torch.no_grad():
        critic[1].weight.div_(critic[1].weight.norm())
    gp1 = losses.gradient_penalty(lambda x: critic(x).flatten(), real, fake, torch.Generator().manual_seed(0))
    assert gp1.item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_quadratic_critic_by_hand():
    """D(x) = ½‖x‖² has gradient x̂: GP = mean_i (‖ε_i x_i + (1 − ε_i) y_i‖ − 1)² with ε from the rng."""
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3) * 0.2
    gp = losses.gradient_penalty(lambda x: 0.5 * x.flatten(1).pow(2).sum(1), real, fake, torch.Generator().manual_seed(7))
    eps = torch.rand(4, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    by_hand = [(math.sqrt(float(((eps[i] * real[i] + (1 - eps[i]) * fake[i]) ** 2).sum())) - 1) ** 2 for i in range(4)]
    assert gp.item() == pytest.approx(sum(by_hand) / 4, rel=1e-5)


def test_wgan_critic_has_no_batchnorm_and_widths_are_independent():
    G, D, p = models.build("wgan_gp", (1, 28, 28), g_width=8, d_width=16)
    assert p["n_critic"] == 5 and p["gp_lambda"] == 10.0 and p["lr_d"] == 1e-4 and tuple(p["betas"]) == (0.0, 0.9)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in D.modules())
    G2, D2, _ = models.build("wgan_gp", (1, 28, 28), g_width=8, d_width=32)
    assert models.count_params(G2) == models.count_params(G) and models.count_params(D2) > models.count_params(D)
    G3, D3, _ = models.build("wgan_gp", (1, 28, 28), g_width=16, d_width=16)
    assert models.count_params(G3) > models.count_params(G) and models.count_params(D3) == models.count_params(D)
    _, Dn, _ = models.build("wgan_gp", (1, 28, 28), d_norm="none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in Dn.modules())
    with pytest.raises(ConfigError, match="batch norm"):
        models.build("wgan_gp", (1, 28, 28), d_norm="batch")
    assert models.MODELS.get("wgan_gp").loss == "wgan_gp"


def test_nan_in_gradient_penalty_stops_training(tmp_path):
    t = train.Trainer("wgan_gp", tiny_data(), tmp_path, cfg(), **TINY["wgan_gp"])
    with torch.no_grad():
        next(iter(t.D.parameters())).view(-1)[0] = float("nan")
    with pytest.raises(TrainingDiverged, match="gradient penalty became nan"):
        t.fit(progress=False)
    assert t.latest_checkpoint() is None


# ----------------------------------------------------------------------------- training contract
@pytest.mark.parametrize("name", ["stylegan", "wgan_gp"])
def test_training_is_deterministic(name, tmp_path):
    d = tiny_data()
    kw = dict(TINY[name], n_critic=2) if name == "wgan_gp" else dict(TINY[name], r1_gamma=1.0)
    a = train.Trainer(name, d, tmp_path / "a", cfg(), **kw)
    res = a.fit(progress=False)
    b = train.Trainer(name, d, tmp_path / "b", cfg(), **kw)
    b.fit(progress=False)
    assert_same(full_state(a), full_state(b))
    assert all(math.isfinite(r["d_loss"]) for r in res.log)
    assert ("gp" in res.log[0]) == (name == "wgan_gp") and ("r1" in res.log[0]) == (name == "stylegan")
    c = train.Trainer(name, d, tmp_path / "c", cfg(seed=1), **kw)
    c.fit(progress=False)
    assert any(not torch.equal(v, full_state(c)[k]) for k, v in full_state(a).items() if k.startswith("G."))


@pytest.mark.parametrize("name", ["stylegan", "wgan_gp"])
def test_resume_equals_uninterrupted(name, tmp_path):
    d = tiny_data()
    kw = dict(TINY[name], n_critic=2) if name == "wgan_gp" else dict(TINY[name], r1_gamma=1.0)
    full = train.Trainer(name, d, tmp_path / "full", cfg(), **kw)
    full.fit(progress=False)
    part = train.Trainer(name, d, tmp_path / "part", cfg(), **kw)
    part.fit(steps=2, progress=False)
    resumed = train.Trainer(name, d, tmp_path / "part", cfg(), **kw)
    assert resumed.step == 2
    resumed.fit(progress=False)
    assert_same(full_state(full), full_state(resumed))
    G, meta = train.load_generator(tmp_path / "part")
    assert meta["model"] == name
    z = G.sample_z(2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(G(z), full.generator.eval()(z))


def test_stylegan_defaults_use_ema_and_r1():
    p = models.resolve_kwargs("stylegan")
    assert p["ema"] > 0 and p["r1_gamma"] > 0 and models.MODELS.get("stylegan").loss == "ns"


# ----------------------------------------------------------------------------- FLOPs
def test_flops_known_answers():
    lin = nn.Linear(10, 5)
    assert forward_flops(lin, torch.randn(3, 10)) == 2 * 10 * 5
    conv = nn.Conv2d(2, 4, 3, padding=1)
    assert forward_flops(conv, torch.randn(2, 2, 6, 6)) == 2 * 2 * 4 * 9 * 36
    # DCGAN G at width w, 28x28: z->(4w,7,7) transposed 7x7; (4w,7,7)->(2w,14,14) k4; (2w,14,14)->(1,28,28) k4
    z, w = 8, 4
    macs = z * 4 * w * 49 + 49 * 4 * w * 2 * w * 16 + 196 * 2 * w * 1 * 16
    G, D, _ = models.build("dcgan", (1, 28, 28), z_dim=z, g_width=w, d_width=w)
    assert forward_flops(G, torch.randn(4, z)) == 2 * macs
    assert forward_flops(G, torch.randn(1, z)) == forward_flops(G, torch.randn(4, z))  # per sample


def test_cost_table():
    df = cost_table(["dcgan", "stylegan", "wgan_gp"], model_kwargs=TINY)
    assert list(df.columns) == ["model", "net", "params", "flops_per_sample", "mflops_per_sample", "n_critic"]
    assert len(df) == 6 and set(df.net) == {"G", "D"}
    G, D, _ = models.build("stylegan", (1, 28, 28), **TINY["stylegan"])
    row = df[(df.model == "stylegan") & (df.net == "G")].iloc[0]
    assert row.params == models.count_params(G) and row.flops_per_sample > 0
    assert df[df.model == "wgan_gp"].n_critic.iloc[0] == 5
