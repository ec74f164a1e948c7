"""Metric tracking during training: a :class:`~ganreport.train.Trainer` callback.

:class:`MetricTracker` scores the generator (and its critic) every ``every`` training steps and
returns a flat ``{name: number}`` dict, which the trainer appends to ``<model_dir>/callbacks.jsonl``
with the step; :func:`read_tracking` reads that file back as a DataFrame. It answers the question of
Liaudanskas (2018, seed 001, "Approaches to understanding GANs"): which metrics follow the sample
quality of a WGAN-GP over training — FID / KID / IS on classifier features, or statistics of the
critic's outputs ("mean critic output on real / fake, their gap, offset from zero")?

Quantities (names are the keys of the returned dict; ``fake`` = ``n`` generated images from fixed
latents ``z ~ N(0, I)`` drawn from ``torch.Generator().manual_seed(seed)``, the same at every call;
``real`` = the held-out real images, by default the whole test split):

- ``fid`` — Fréchet distance of the extractor's main features (Heusel et al. 2017),
  ``‖μ_r − μ_f‖² + tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^½)``; exactly ``metrics.compute("fid", real, fake)``.
- ``fid_ref`` — the same on ``ref_n`` further images from *independent* latents (seed ``seed + 1``)
  against all real images: the "FID on a large held-out sample" that the other curves are
  compared with (only when ``ref_n > 0``).
- ``kid`` — unbiased MMD² with the cubic polynomial kernel, mean over ``kid_subsets`` subsets
  (Bińkowski et al. 2018).
- ``is`` — ``exp(E_x KL(p(y|x) ‖ p(y)))`` of the classifier's logits (Salimans et al. 2016).
- ``ddm`` — ModNet thesis eq. 3.4 on the logits, ``−(1/|T|) Σ_t log((1/|G|) Σ_g exp(−½‖t − g‖²))``.
- ``critic_real``, ``critic_fake`` — ``E[D(x)]`` on ``n`` real images and ``E[D(G(z))]``;
  ``critic_gap = critic_real − critic_fake`` (the WGAN estimate of W₁, Arjovsky et al. 2017);
  ``critic_offset = (critic_real + critic_fake) / 2``, where the critic's decisions balance
  relative to zero (seed 001: "the equilibrium ... at an offset from zero"). The WGAN loss is
  unchanged by ``D → D + c``, so nothing pins the offset to zero.
- visual-quality proxies: ``confidence`` — mean max softmax probability of the classifier
  (recognisable digits score near 1); ``sharpness_gap`` — ``|mean LV(fake) − mean LV(real)| /
  mean LV(real)`` with ``LV`` the variance of the Laplacian (blur lowers it, noise raises it).
- ``tracker_s`` — seconds the call took (the tracking overhead).

The tracker never touches the trainer's state: it samples with its own seeded ``torch.Generator``,
in eval mode and under ``torch.no_grad()``, inside ``torch.random.fork_rng`` (the global RNG is
restored), and puts G and D back into the mode they were in; training with and without it gives
identical weights (``tests/studies/test_critic.py``). Under DDP only rank 0 computes.

Usage::

    from ganreport import config, train
    from ganreport.train import tracking
    prof = config.resolve("quick")
    cbs = tracking.tracking_callbacks(prof, "wgan_gp")            # [(MetricTracker, every)] or []
    train.train_model("wgan_gp", "mnist", prof, callbacks=cbs)
    df = tracking.read_tracking(config.model_dir("quick", "wgan_gp"))   # step, fid, kid, ...

or on any generator without a trainer: ``MetricTracker("classifier").evaluate(G, D)``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import io
from .. import settings as settings_mod
from ..errors import ConfigError, DataError
from ..settings import Profile

#: Metric groups a tracker can compute (``critic`` expands to the four critic statistics,
#: ``proxies`` to ``confidence`` and ``sharpness_gap``).
TRACK_METRICS = ("fid", "kid", "is", "ddm", "critic", "proxies")
CRITIC_KEYS = ("critic_real", "critic_fake", "critic_gap", "critic_offset")
PROXY_KEYS = ("confidence", "sharpness_gap")
#: Which way each tracked quantity is better (``none``: descriptive).
DIRECTIONS: dict[str, str] = {
    "fid": "lower", "fid_ref": "lower", "kid": "lower", "is": "higher", "ddm": "lower",
    "critic_real": "none", "critic_fake": "none", "critic_gap": "lower", "critic_offset": "none",
    "confidence": "higher", "sharpness_gap": "lower",
}
#: Units for axis labels.
UNITS: dict[str, str] = {
    "fid": "classifier features", "fid_ref": "classifier features", "kid": "MMD², classifier features",
    "is": "effective classes", "ddm": "nats", "critic_real": "critic units", "critic_fake": "critic units",
    "critic_gap": "critic units", "critic_offset": "critic units", "confidence": "probability",
    "sharpness_gap": "relative to real",
}

DEFAULT_TRACKING: dict[str, Any] = settings_mod.defaults(settings_mod.Tracking)


class MetricTracker:
    """Trainer callback: sample quality and critic statistics of the current generator.

    Parameters
    ----------
    extractor : a feature :class:`~ganreport.metrics.features.Extractor` or an extractor name
        (``classifier``, ``pixels``, ``inception``; built on first use with ``feature_kw``). For the
        extractor, dataset and tracking settings of a resolved profile use :meth:`from_profile`.
    real_images : held-out real images ``(N, C, H, W)`` in [-1, 1]; default: the ``split`` split of
        ``dataset`` (its features then come from the feature cache of notebook 02).
    metrics : groups from :data:`TRACK_METRICS`.
    n : generated images per call (and real images for the critic statistics).
    ref_n : images for ``fid_ref`` (independent latents); 0 disables it.
    seed : latents of the tracked sample come from ``torch.Generator().manual_seed(seed)``, those of
        the reference sample from ``seed + 1``, the real subset for the critic from ``seed``.
    kid_subsets, is_splits : options of KID and IS.
    real_feats : precomputed features of ``real_images`` (``{output: (N, D)}``).
    batch_size : generator / extractor batch size.
    extractor_device : device of an extractor built here by name (default: the extractor's default, CPU).
    cpu_threads : torch threads for a call that runs on the CPU (default 1: on a busy 2-core machine one
        thread scores these small batches several times faster than two); None keeps torch's setting.
        The caller's thread count is restored afterwards.
    fid_boot : > 0 adds ``fid_ci_low`` / ``fid_ci_high``, the 95 % normal bootstrap interval of ``fid``
        from that many replicates (:func:`ganreport.metrics.fid_kid_is.fid`).
    """

    def __init__(self, extractor: Any = "classifier", real_images: torch.Tensor | None = None, *,
                 metrics: Sequence[str] | None = None, n: int | None = None, ref_n: int | None = None,
                 seed: int | None = None, dataset: str | None = None, data_seed: int | None = None,
                 split: str = "test", feature_kw: dict[str, Any] | None = None, kid_subsets: int | None = None,
                 is_splits: int = 1, real_feats: dict[str, torch.Tensor] | None = None,
                 batch_size: int = 256, extractor_device: str | None = None, cpu_threads: int | None = None,
                 fid_boot: int = 0) -> None:
        from ..metrics.features import EXTRACTORS, Extractor

        if isinstance(extractor, str) and extractor not in EXTRACTORS:
            raise ConfigError(f"unknown feature extractor {extractor!r}; known: {', '.join(EXTRACTORS.names())} "
                              "(for a profile's settings use MetricTracker.from_profile)")
        if not isinstance(extractor, (str, Extractor)):
            raise ConfigError(f"extractor must be an Extractor or an extractor name, got {type(extractor).__name__}")

        def pick(value: Any, key: str) -> Any:
            return value if value is not None else DEFAULT_TRACKING[key]

        self.metrics = tuple(pick(metrics, "metrics"))
        unknown = [m for m in self.metrics if m not in TRACK_METRICS]
        if unknown:
            raise ConfigError(f"unknown tracked metric(s) {unknown}; known: {', '.join(TRACK_METRICS)}")
        self.n, self.ref_n = int(pick(n, "n")), int(pick(ref_n, "ref_n"))
        self.seed, self.kid_subsets = int(pick(seed, "seed")), int(pick(kid_subsets, "kid_subsets"))
        if self.n < 2 or self.ref_n < 0:
            raise ConfigError(f"tracker needs n >= 2 and ref_n >= 0, got n={self.n}, ref_n={self.ref_n}")
        self.is_splits, self.batch_size = int(is_splits), int(batch_size)
        self.cpu_threads = pick(cpu_threads, "cpu_threads")
        self.fid_boot = int(fid_boot)
        self.dataset, self.data_seed, self.split = dataset or "mnist", int(data_seed or 0), split
        self.feature_kw = dict(feature_kw or {})
        if extractor_device is not None:
            self.feature_kw["device"] = str(extractor_device)
        self._extractor = extractor
        self._real_images = real_images
        self._real_feats = real_feats
        self._ready = False

    @classmethod
    def from_profile(cls, prof: Profile, **kw: Any) -> "MetricTracker":
        """A tracker with the feature extractor of ``prof.quantitative`` (as notebook 02 scores), the
        profile's dataset and data seed, and its ``experiments.tracking`` settings; ``kw`` (not None)
        override them."""
        q, t = prof.quantitative, prof.experiments.tracking
        feature_kw = ({"weights": q.inception_weights} if q.feature == "inception"
                      else dict(q.classifier_kw) if q.feature == "classifier" else {})
        base = dict(feature_kw=feature_kw, dataset=prof.dataset, data_seed=prof.data_seed, metrics=t.metrics, n=t.n,
                    ref_n=t.ref_n, seed=t.seed, kid_subsets=t.kid_subsets, cpu_threads=t.cpu_threads)
        base.update({k: v for k, v in kw.items() if v is not None})
        return cls(q.feature, **base)

    # ------------------------------------------------------------------ set-up (lazy: a finished run never pays it)
    @property
    def extractor(self):
        self._prepare()
        return self._extractor

    def _prepare(self) -> None:
        if self._ready:
            return
        from .. import data as data_mod
        from ..metrics import features as F
        from ..metrics.quality import laplacian_variance

        if isinstance(self._extractor, str):
            kw = dict(self.feature_kw)
            if self._extractor == "classifier":
                kw = {"dataset": self.dataset, "data_seed": self.data_seed, "progress": False, **kw}
            self._extractor = F.get_extractor(self._extractor, **kw)
        ext = self._extractor
        if self._real_images is None:
            self._real_images = data_mod.load(self.dataset, self.split, seed=self.data_seed).images
            if self._real_feats is None:
                self._real_feats = F.real_features(ext, self.dataset, self.split, self.data_seed)
        real = self._real_images
        if not isinstance(real, torch.Tensor) or real.ndim != 4 or len(real) < 2:
            raise DataError(f"real_images must be a (N, C, H, W) tensor with N >= 2, got {getattr(real, 'shape', type(real))}")
        if self._real_feats is None:
            self._real_feats = F.extract(ext, real, self.batch_size)
        g = torch.Generator().manual_seed(self.seed)
        self._critic_idx = torch.randperm(len(real), generator=g)[:min(self.n, len(real))]
        self._real_lv = float(laplacian_variance(real[self._critic_idx]).mean())
        self._ready = True

    # ------------------------------------------------------------------ the callback
    def __call__(self, trainer: Any, step: int) -> dict[str, float] | None:
        """Trainer callback: :meth:`evaluate` of ``trainer.generator`` and ``trainer.D`` (rank 0 only)."""
        if not getattr(trainer, "is_main", True):
            return None
        return self.evaluate(trainer.generator, trainer.D, device=getattr(trainer, "device", None))

    @torch.no_grad()
    def evaluate(self, G: nn.Module, D: nn.Module | None = None,
                 device: torch.device | str | None = None) -> dict[str, float]:
        """The tracked quantities of generator ``G`` (and critic ``D``) as a flat ``{name: float}``.

        G and D are put in eval mode for the call and restored to their previous mode; the global
        RNG state is restored; nothing else is modified.
        """
        from ..metrics.base import torch_threads

        t0 = time.perf_counter()
        dev = torch.device(device) if device is not None else _module_device(G)
        with torch_threads(self.cpu_threads if dev.type == "cpu" else None):
            out = self._evaluate(G, D, dev)
        out["tracker_s"] = round(time.perf_counter() - t0, 4)
        return out

    def _evaluate(self, G: nn.Module, D: nn.Module | None, dev: torch.device) -> dict[str, float]:
        from ..metrics import compute
        from ..metrics.features import extract
        from ..metrics.quality import laplacian_variance
        from .checkpoints import sample

        self._prepare()
        ext = self._extractor
        modes = [(m, m.training) for m in (G, D) if m is not None]
        cuda = [dev.index or 0] if dev.type == "cuda" else []
        out: dict[str, float] = {}
        try:
            with torch.random.fork_rng(devices=cuda):
                for m, _ in modes:
                    m.eval()
                fake = sample(G, self.n, seed=self.seed, batch_size=self.batch_size, device=dev).float()
                ref = (sample(G, self.ref_n, seed=self.seed + 1, batch_size=self.batch_size, device=dev).float()
                       if self.ref_n > 0 and "fid" in self.metrics else None)
                d_real = d_fake = None
                if D is not None and "critic" in self.metrics:
                    real_c = self._real_images[self._critic_idx]
                    d_real = _scores(D, real_c, dev, self.batch_size)
                    d_fake = _scores(D, fake, dev, self.batch_size)
        finally:
            for m, was in modes:
                m.train(was)
        if not torch.isfinite(fake).all():
            raise DataError("the generator produced NaN/inf images; the tracked metrics are undefined at this step")
        ff = extract(ext, fake, self.batch_size)
        rf = self._real_feats
        main, logits = ext.main, ext.logits
        if "fid" in self.metrics:
            res = compute("fid", rf[main], ff[main], seed=self.seed, n_boot=self.fid_boot)
            out["fid"] = res.value
            if self.fid_boot > 0:
                out["fid_ci_low"], out["fid_ci_high"] = res.ci_low, res.ci_high
            if ref is not None:
                out["fid_ref"] = compute("fid", rf[main], extract(ext, ref, self.batch_size)[main],
                                         seed=self.seed, n_boot=0).value
        if "kid" in self.metrics:
            out["kid"] = compute("kid", rf[main], ff[main], seed=self.seed, num_subsets=self.kid_subsets,
                                 subset_size=min(1000, self.n, len(rf[main]))).value
        if logits is not None:
            if "is" in self.metrics:
                out["is"] = compute("is", None, ff[logits], seed=self.seed, splits=min(self.is_splits, self.n)).value
            if "ddm" in self.metrics:
                out["ddm"] = compute("ddm", rf[logits], ff[logits], seed=self.seed, n_boot=0).value
        if d_real is not None and d_fake is not None:
            r, f = float(d_real.double().mean()), float(d_fake.double().mean())
            out.update(critic_real=r, critic_fake=f, critic_gap=r - f, critic_offset=(r + f) / 2)
        if "proxies" in self.metrics:
            if logits is not None:
                out["confidence"] = float(torch.softmax(ff[logits].double(), 1).max(1).values.mean())
            lv = float(laplacian_variance(fake).mean())
            out["sharpness_gap"] = abs(lv - self._real_lv) / self._real_lv if self._real_lv > 0 else float("nan")
        return out

    def __repr__(self) -> str:
        name = self._extractor if isinstance(self._extractor, str) else self._extractor.name
        return f"MetricTracker({name}, metrics={list(self.metrics)}, n={self.n}, ref_n={self.ref_n}, seed={self.seed})"


def _module_device(m: nn.Module) -> torch.device:
    p = next(iter(m.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _scores(D: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    return torch.cat([D(x[i:i + batch_size].to(device)).reshape(-1).float().cpu() for i in range(0, len(x), batch_size)])


# ---------------------------------------------------------------------- profile wiring
def tracking_settings(prof: Profile) -> dict[str, Any]:
    """``experiments.tracking`` of the resolved profile ``prof`` as a dict (disabled when absent)."""
    return dataclasses.asdict(prof.experiments.tracking)


def tracking_every(steps: int, points: int | None = None, every: int | None = None) -> int:
    """Interval between tracked steps: ``every`` when given, else ``ceil(steps / points)`` (>= 1)."""
    if every:
        return max(1, int(every))
    if not points or points < 1:
        raise ConfigError(f"tracking needs every >= 1 or points >= 1, got every={every!r}, points={points!r}")
    return max(1, math.ceil(int(steps) / int(points)))


def tracking_callbacks(prof: Profile, model: str, steps: int | None = None,
                       settings: dict[str, Any] | None = None) -> list[tuple[MetricTracker, int]]:
    """The ``(callback, every)`` pairs to pass to ``train.train_model(..., callbacks=...)`` for ``model``.

    Empty when the profile's ``experiments.tracking.enabled`` is false or ``model`` is not in its
    ``models``. ``every`` is ``experiments.tracking.every`` or ``ceil(steps / points)`` with
    ``steps`` = the profile's ``steps[model]`` unless given. ``settings`` overrides the profile block.
    The tracker builds its extractor lazily, so a run that already finished (train_model resumes and
    returns at once) costs nothing; its earlier output stays in ``callbacks.jsonl``.
    """
    s = {**tracking_settings(prof), **(settings or {})}
    unknown = set(s) - set(DEFAULT_TRACKING)
    if unknown:
        raise ConfigError(f"unknown experiments.tracking setting(s) {sorted(unknown)}; valid: {', '.join(DEFAULT_TRACKING)}")
    if not s.get("enabled") or model not in list(s.get("models") or []):
        return []
    if steps is None:
        steps = int(prof.steps.get(model, 100))
    every = tracking_every(steps, s.get("points"), s.get("every"))
    from .trainer import pick_device

    dev = pick_device(prof.device)
    tracker = MetricTracker.from_profile(prof, n=s["n"], ref_n=s["ref_n"], metrics=s["metrics"], seed=s["seed"],
                                         kid_subsets=s["kid_subsets"], cpu_threads=s["cpu_threads"],
                                         extractor_device=str(dev) if dev.type == "cuda" else None)
    return [(tracker, every)]


def read_tracking(model_dir: str | Path) -> "Any":
    """``<model_dir>/callbacks.jsonl`` as a DataFrame: one row per step (rows of several callbacks at
    the same step merged, the last value winning), sorted by step; empty frame with ``step`` if none."""
    import pandas as pd

    rows = io.read_jsonl(Path(model_dir) / "callbacks.jsonl")
    if not rows:
        return pd.DataFrame({"step": pd.Series(dtype="int64")})
    df = pd.DataFrame(rows)
    df = df.groupby("step", sort=True).last().reset_index()
    return df


__all__ = ["MetricTracker", "read_tracking", "tracking_callbacks", "tracking_settings", "tracking_every",
           "TRACK_METRICS", "DIRECTIONS", "UNITS", "CRITIC_KEYS", "PROXY_KEYS"]
