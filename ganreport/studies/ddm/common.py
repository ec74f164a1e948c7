"""Settings, constants and result files of the DDM study (seed 004, ch. 3).

:func:`settings` reads the profile's ``ddm_study`` block over :data:`STUDY_DEFAULTS`; results are JSON
files under ``runs/<profile>/ddm_study/`` (:func:`study_dir`) keyed by the settings that produced
them (:func:`_save`, :func:`_load_cached`); :func:`single_thread` runs the study's tiny models on one
torch thread; ``_f``, ``_names``, ``_join`` format and align numbers for the verdict sentences.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import config, io
from ... import settings as settings_mod
from ...errors import ConfigError
from ...metrics.base import torch_threads


LN2 = math.log(2.0)


THESIS_ORDER = ("dcgan", "dcgan_small", "dcgan_weak")  # best -> worst, thesis §3.4.2 (MNIST)


LABELS = {"dcgan": "DCGAN", "dcgan_weak": "weakened DCGAN (no BN in G)", "dcgan_small": "small DCGAN (one layer fewer)",
          "real_train": "real train vs test"}


#: Defaults of the profile's ``ddm_study`` block (declared with their ranges in :class:`ganreport.settings.DDMStudy`).
STUDY_DEFAULTS: dict[str, Any] = settings_mod.defaults(settings_mod.DDMStudy)


CLASSIFIER_TRAIN_DEFAULTS: dict[str, Any] = dict(arch="smallcnn", seed=1, width=16, prelogit_dim=128, epochs=2,
                                                 batch_size=64, lr=3e-3, weight_decay=1e-4, dropout=0.25,
                                                 n_train=None, augment=True)


UNITS = {"gaussian": "σ ([0, 1] intensity)", "uniform": "σ ([0, 1] intensity, std of the uniform noise)",
         "blur": "σ (pixels)"}


def settings(prof: settings_mod.Profile) -> dict[str, Any]:
    """The resolved profile's ``ddm_study`` block, checked by :func:`resolve_settings`."""
    block = settings_mod.as_dict(prof.ddm_study)
    return resolve_settings(block)


def resolve_settings(block: dict[str, Any]) -> dict[str, Any]:
    """Merge ``block`` over :data:`STUDY_DEFAULTS` (one level deep for dict values) and check it."""
    unknown = set(block) - set(STUDY_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown ddm_study setting(s) {sorted(unknown)}; valid: {', '.join(sorted(STUDY_DEFAULTS))}")
    s = copy.deepcopy(STUDY_DEFAULTS)
    for k, v in block.items():
        if isinstance(s[k], dict) and isinstance(v, dict):
            bad = set(v) - set(s[k])
            if bad and k != "model_kwargs":
                raise ConfigError(f"unknown ddm_study.{k} setting(s) {sorted(bad)}; valid: {', '.join(sorted(s[k]))}")
            s[k].update(v)
        else:
            s[k] = copy.deepcopy(v)
    for k in ("steps", "every", "batch_size", "n_eval", "n_test", "n_val"):
        if int(s[k]) < 1:
            raise ConfigError(f"ddm_study.{k} must be >= 1, got {s[k]}")
    if int(s["every"]) > int(s["steps"]):
        raise ConfigError(f"ddm_study.every ({s['every']}) exceeds steps ({s['steps']}): no evaluation would run")
    if any(float(x) <= 0 for x in s["ais"]["sigmas"]):
        raise ConfigError(f"ddm_study.ais.sigmas must all be > 0, got {s['ais']['sigmas']}")
    if not 0 < float(s["parzen"]["pca_variance"]) <= 1:
        raise ConfigError(f"ddm_study.parzen.pca_variance must be in (0, 1], got {s['parzen']['pca_variance']}")
    return s


def study_dir(profile: str, root: Path | None = None) -> Path:
    """``runs/<profile>/ddm_study/``."""
    return config.results_dir(profile, "ddm_study", root)


def _key(obj: Any) -> str:
    return io.settings_key(obj, 10)


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _load_cached(path: Path, key: Any) -> list[dict[str, Any]] | None:
    """Rows of ``path`` when it was written with the same ``key`` (:func:`ganreport.io.read_keyed`; the
    key names the settings and the networks' weights, :meth:`Study.key`)."""
    blob = io.read_keyed(path, _clean(key))
    return None if blob is None else blob.get("rows")


def _save(path: Path, key: Any, rows: list[dict[str, Any]], seconds: float, **extra: Any) -> None:
    blob = _clean({"rows": rows, "seconds": round(seconds, 3), **extra})
    io.write_keyed(path, _clean(key), blob, indent=1, sort_keys=False)  # keeps the column order of the rows


def single_thread(fn):
    """Run ``fn`` with one intra-op torch thread: the study's models are tiny, and on a shared
    2-core CPU a second OpenMP thread makes them tens of times slower (threads wait for each other)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        with torch_threads(1):
            return fn(*a, **kw)

    return wrapper


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows)


def _f(v: float | None, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{nd}g}" if abs(v) < 1e5 else f"{v:.3e}"


def _names(order: Sequence[str]) -> str:
    return " < ".join(order)


def _join(a, b):
    import pandas as pd

    return pd.concat({"a": a, "b": b}, axis=1).dropna()
