"""Quantitative metrics (a registry; the names are the API).

``compute(name, real, fake, seed=0, **kw)`` checks the inputs and returns a :class:`Result`
(``value``, ``ci_low``, ``ci_high``, ``n``, ``direction``, ``extra``)::

    from ganreport.metrics import compute
    compute("fid", real_feats, fake_feats).value

Metrics (``METRICS.names()``), by input:

- features (2-D, same dim): ``fid``, ``kid``, ``precision``, ``recall``, ``density``,
  ``coverage``, ``mmd`` (``kernel="gaussian"|"polynomial"``), ``mmd_poly``, ``c2st_1nn``,
  ``c2st_net``, ``ddm`` (ModNet thesis eq. 3.4), ``ddm_train`` (eq. 3.5, ``reference=`` train
  features);
- logits of the fakes only: ``is``;
- images (N, C, H, W) in [-1, 1]: ``sharpness``, ``noise``, ``ssim_nn``, ``memorization``
  (``real`` = training images, ``heldout=`` held-out real images);
- critic outputs (1-D): ``critic_real``, ``critic_fake``, ``critic_gap``, ``critic_offset``.

Feature extractors live in :mod:`ganreport.metrics.features`, the validation experiments in
:mod:`ganreport.metrics.validate`, the sharded feature pass in :mod:`ganreport.metrics.sharded`,
and every metric on one set of samples in :mod:`ganreport.metrics.suite` (checkpoints are loaded
one level up, in :mod:`ganreport.evaluate`).
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import ConfigError, DataError
from .base import (METRICS, SINGLE_THREAD_MAX, MetricSpec, Result, check_features, check_images, check_same_dim,
                   check_scores, register, torch_threads)


def compute(name: str, real: Any, fake: Any, seed: int = 0, **kw: Any) -> Result:
    """Compute metric ``name`` of ``fake`` against ``real``; returns a :class:`Result`.

    Parameters
    ----------
    name : a registered metric (``METRICS.names()``).
    real, fake : torch tensors or numpy arrays; 2-D features for feature metrics, (N, C, H, W)
        images in [-1, 1] for image metrics, 1-D critic outputs for ``critic_*``. For ``is``,
        ``fake`` holds logits and ``real`` is ignored (may be None).
    seed : seeds every random draw (bootstrap, subsets, splits, classifier initialisation).
    **kw : the metric's options (see its docstring); unknown options are an error.

    Raises
    ------
    ConfigError : unknown metric or option.
    DataError : empty input, fewer than 2 samples, NaN/inf, wrong number of dimensions, or
        real and fake of different feature dimension.
    """
    spec = METRICS.get(name)
    params = inspect.signature(spec.fn).parameters
    unknown = sorted(set(kw) - set(params))
    if unknown:
        valid = [p for p in params if p not in ("real", "fake", "seed")]
        raise ConfigError(f"metric {name!r} has no option(s) {unknown}; valid: {', '.join(valid)}")
    check = {"features": check_features, "logits": check_features, "images": check_images,
             "scores": check_scores}[spec.inputs]
    fake_t = check(fake, "fake")
    real_t = None
    if spec.inputs != "logits" and (spec.needs_real or real is not None):
        real_t = check(real, "real")
        if spec.inputs != "scores":
            check_same_dim(real_t, fake_t)
    n_total = len(fake_t) + (0 if real_t is None else len(real_t))
    with torch_threads(1 if n_total <= SINGLE_THREAD_MAX else None):
        result = spec.fn(real_t, fake_t, seed=int(seed), **kw)
    result.name = name
    return result


def direction(name: str) -> str:
    """``"lower"``, ``"higher"`` or ``"none"``: which way metric ``name`` is better."""
    return METRICS.get(name).direction


from . import c2st, critic, ddm, fid_kid_is, memorization, mmd, prdc, quality  # noqa: E402,F401  (register)
from .suite import evaluate_samples, real_baselines  # noqa: E402

__all__ = ["compute", "direction", "Result", "METRICS", "MetricSpec", "register", "check_features",
           "check_images", "check_scores", "DataError", "ConfigError", "evaluate_samples", "real_baselines"]
