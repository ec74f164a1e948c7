"""Every path and every profile, in one place.

Paths are derived from the project root (the folder holding ``pyproject.toml``); the environment
variable ``GANREPORT_ROOT`` overrides it (tests use this to write into a temporary folder).

Profiles are the Papermill parameter files ``profiles/<name>.yaml``: flat ``key: value`` maps
that the notebooks' ``parameters`` cells mirror (the notebook defaults equal ``smoke``).
:func:`load_profile` is the single reader; it validates every profile against the typed blocks of
:mod:`ganreport.settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import settings
from .errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJ_ROOT = Path(os.environ.get("GANREPORT_ROOT", PACKAGE_DIR.parent)).resolve()
DATA_DIR = PROJ_ROOT / "data"
CACHE_DIR = DATA_DIR / "cache"
RUNS_DIR = PROJ_ROOT / "runs"
FIGURES_DIR = PROJ_ROOT / "figures"
REPORTS_DIR = PROJ_ROOT / "reports"
NOTEBOOKS_DIR = PACKAGE_DIR.parent / "notebooks"
PROFILES_DIR = PACKAGE_DIR.parent / "profiles"

PROFILES = ("smoke", "quick", "full")
NOTEBOOKS = ("01_train", "02_quantitative", "03_qualitative", "04_comparison")


def profile_path(name: str) -> Path:
    """The YAML file of profile ``name`` (``smoke``, ``quick``, ``full`` or a path to a YAML file)."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown profile {name!r}: no file {path}; known: {', '.join(PROFILES)}"
        )
    return path


def load_profile(name: str, overrides: dict[str, Any] | None = None, extra: Any = ()) -> dict[str, Any]:
    """Parameters of profile ``name`` (``smoke``, ``quick``, ``full`` or a path to a YAML file),
    with ``overrides`` (``{"qualitative.n_images": 4}``) applied, validated against the typed blocks
    of :mod:`ganreport.settings` (one :class:`ConfigError` line naming file, key, value and what is
    allowed; ``extra``: top-level keys declared elsewhere, e.g. by a notebook's parameters cell).
    Returns the mapping as written; :func:`resolve` also gives the typed object."""
    return resolve(name, overrides, extra)[0]


def resolve(name: str, overrides: dict[str, Any] | None = None,
            extra: Any = ()) -> tuple[dict[str, Any], settings.Run]:
    """``(params, run)``: the validated mapping of profile ``name`` and its typed :class:`~ganreport.settings.Run`."""
    path = profile_path(name)
    try:
        source = str(path.relative_to(PROJ_ROOT))
    except ValueError:
        source = str(path)
    params = settings.read_yaml(path)
    if overrides:
        params = settings.apply_overrides(params, overrides)
        source += " with --set " + ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    return params, settings.validate(params, source, extra)


def run_dir(profile: str, root: Path | None = None) -> Path:
    """``runs/<profile>/``: checkpoints, metrics.jsonl, executed notebooks, figures of one profile."""
    if not profile or "/" in profile or profile.startswith("."):
        raise ConfigError(f"invalid profile name {profile!r}")
    d = (root or RUNS_DIR) / profile
    d.mkdir(parents=True, exist_ok=True)
    return d


def model_dir(profile: str, model: str, dataset: str = "mnist", root: Path | None = None) -> Path:
    """``runs/<profile>/<dataset>/<model>/``: one trained model's checkpoints, log and samples."""
    d = run_dir(profile, root) / dataset / model
    d.mkdir(parents=True, exist_ok=True)
    return d


def results_dir(profile: str, name: str, root: Path | None = None) -> Path:
    """``runs/<profile>/<name>/``, created: one folder per notebook section's result files."""
    d = run_dir(profile, root) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def figure_dir(profile: str, root: Path | None = None) -> Path:
    return results_dir(profile, "figures", root)
