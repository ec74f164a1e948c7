"""Tidy result rows in ``runs/<profile>/metrics.jsonl`` — the only channel between notebooks.

One row per model x metric x seed (x step), with the fields of DESIGN.md:
``model, metric, value, ci_low, ci_high, n, step, feature, profile`` plus ``dataset``, ``seed``,
``section`` (which notebook/experiment wrote it) and ``direction`` (``lower``/``higher`` is
better, or ``none``). Re-running a notebook replaces its rows instead of duplicating them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import config, io

FIELDS = ("model", "metric", "value", "ci_low", "ci_high", "n", "step", "feature", "profile",
          "dataset", "seed", "section", "direction")
KEY = ("model", "metric", "feature", "step", "dataset", "seed", "section")


def metrics_path(profile: str, root: Path | None = None) -> Path:
    return config.run_dir(profile, root) / "metrics.jsonl"


#: ``lower`` / ``higher``: one-sided, that end is better; ``target``: two-sided, the value real data
#: scores (the ``real_test`` baseline, real vs real) is best and either side of it is worse, so that
#: neither copying nor noise can rank first; ``none``: descriptive.
DIRECTIONS = ("lower", "higher", "target", "none")
#: How each direction reads in reports and tables.
DIRECTION_TEXT = {"lower": "↓ lower is better", "higher": "↑ higher is better",
                  "target": "↕ closest to real data is better", "none": "descriptive"}


def make_row(model: str, metric: str, value: float, *, ci_low: float | None = None, ci_high: float | None = None,
             n: int | None = None, step: int | None = None, feature: str = "", profile: str = "",
             dataset: str = "", seed: int = 0, section: str = "", direction: str = "none",
             **extra: Any) -> dict[str, Any]:
    """A row with every field present (missing CI -> None); ``extra`` keys are kept as they are."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    v = float(value)
    row = dict(model=model, metric=metric, value=v if math.isfinite(v) else None,
               ci_low=None if ci_low is None else float(ci_low), ci_high=None if ci_high is None else float(ci_high),
               n=None if n is None else int(n), step=step, feature=feature, profile=profile, dataset=dataset,
               seed=int(seed), section=section, direction=direction)
    row.update(extra)
    return row


def record(profile: str, rows: Iterable[Mapping[str, Any]], root: Path | None = None) -> Path:
    """Write ``rows`` to ``metrics.jsonl``, replacing earlier rows with the same key (atomic)."""
    path = metrics_path(profile, root)
    new = [dict(r) for r in rows]
    for r in new:
        r.setdefault("profile", profile)
        missing = [f for f in ("model", "metric", "value") if f not in r]
        if missing:
            raise ValueError(f"result row lacks {missing}: {r}")
    keys = {_key(r) for r in new}
    kept = [r for r in io.read_jsonl(path) if _key(r) not in keys]
    text = "".join(json.dumps(r, default=io._json_default) + "\n" for r in kept + new)
    io.write_text(path, text)
    return path


def _key(r: Mapping[str, Any]) -> tuple:
    return tuple(json.dumps(r.get(k)) for k in KEY)


def load(profile: str, root: Path | None = None):
    """All rows of a profile as a pandas DataFrame (empty frame with the fields when none)."""
    import pandas as pd

    rows = io.read_jsonl(metrics_path(profile, root))
    df = pd.DataFrame(rows)
    for f in FIELDS:
        if f not in df.columns:
            df[f] = None
    return df
