"""Every path and every profile, in one place.

Paths are derived from the project root (the folder holding ``pyproject.toml``); the environment
variable ``GANREPORT_ROOT`` overrides it (tests use this to write into a temporary folder).

Profiles are the Papermill parameter files ``profiles/<name>.yaml``: flat ``key: value`` maps
that the notebooks' ``parameters`` cells mirror (the notebook defaults equal ``smoke``).
:func:`resolve` is the single reader: it validates a profile against the typed blocks of
:mod:`ganreport.settings` and returns the object that is passed down.
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


def resolve(name: str, overrides: dict[str, Any] | None = None) -> settings.Profile:
    """The resolver: profile ``name`` (``smoke``, ``quick``, ``full`` or a path to a YAML file) with
    ``overrides`` (``{"qualitative.n_images": 4}``) applied, checked against the typed blocks of
    :mod:`ganreport.settings` and returned as a :class:`~ganreport.settings.Profile`. Called once,
    where a notebook or the CLI starts; the package below takes the object, never a profile name to
    re-read. A bad value is one :class:`ConfigError` line naming the file, the key, the value and
    what is allowed."""
    return _read(name, overrides)[1]


def profile_params(name: str, extra: Any = ()) -> dict[str, Any]:
    """The validated mapping of profile ``name`` as written in its file, for Papermill (the report
    passes each notebook the keys its ``parameters`` cell declares; ``extra``: such keys that no
    block of :mod:`ganreport.settings` declares)."""
    return _read(name, None, extra)[0]


def _read(name: str, overrides: dict[str, Any] | None, extra: Any = ()) -> tuple[dict[str, Any], settings.Profile]:
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
