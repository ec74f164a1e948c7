"""Settings and result files of the critic studies (seed 001).

:func:`settings` reads the profile's ``experiments`` block (``tracking``, ``grid``, ``lime``) over
the defaults. Heavy results (grid, LIME) are written atomically under
``runs/<profile>/experiments/`` (:func:`experiments_dir`) together with the settings that produced
them (:func:`_write_frame`, a settings key from :func:`_key`), and reused when the settings match
(:func:`_cached`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ... import config, io
from ... import settings as settings_mod
from ...errors import ConfigError
from ...train.tracking import DEFAULT_TRACKING

DEFAULT_GRID: dict[str, Any] = settings_mod.defaults(settings_mod.Grid)
DEFAULT_LIME: dict[str, Any] = settings_mod.defaults(settings_mod.Lime)
DEFAULTS: dict[str, dict[str, Any]] = {"tracking": DEFAULT_TRACKING, "grid": DEFAULT_GRID, "lime": DEFAULT_LIME}


def settings(prof: settings_mod.Profile, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The resolved profile's ``experiments`` block (``tracking``, ``grid``, ``lime``) over the defaults.

    ``overrides`` (``{"grid": {"steps": 50}}``) replace single keys; unknown keys are an error.
    """
    block = settings_mod.as_dict(prof.experiments)
    out: dict[str, dict[str, Any]] = {}
    for name, default in DEFAULTS.items():
        given = {**dict(block.get(name) or {}), **dict((overrides or {}).get(name) or {})}
        unknown = set(given) - set(default)
        if unknown:
            raise ConfigError(f"unknown experiments.{name} setting(s) {sorted(unknown)}; valid: {', '.join(default)}")
        out[name] = {**default, **given}
    extra = set(block) - set(DEFAULTS)
    if extra:
        raise ConfigError(f"unknown experiments block(s) {sorted(extra)}; valid: {', '.join(DEFAULTS)}")
    return out


def experiments_dir(profile: str, root: Path | None = None) -> Path:
    """``runs/<profile>/experiments/``."""
    return config.results_dir(profile, "experiments", root)


def _key(obj: Any) -> str:
    return io.settings_key(obj, 12)


def _cached(path: Path, key: str) -> bool:
    """``path`` (a CSV) exists and its sidecar JSON was written with ``key`` (:func:`ganreport.io.read_keyed`)."""
    return path.is_file() and io.read_keyed(path.with_suffix(".json"), key) is not None


def _write_frame(path: Path, df: pd.DataFrame, key: str, meta: dict[str, Any], index: bool = False) -> None:
    io.write_text(path, df.to_csv(index=index))
    io.write_keyed(path.with_suffix(".json"), key, meta)


__all__ = ["settings", "experiments_dir", "DEFAULT_GRID", "DEFAULT_LIME", "DEFAULTS"]
