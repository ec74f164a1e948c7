"""The wording shared by the ``verdict_*`` functions of the studies: the three verdict labels, the
Spearman-ρ thresholds and the number formatters (every number in a verdict is formatted from its
input by :func:`_fmt` / :func:`_rho`)."""

from __future__ import annotations

import math
from typing import Any

#: |Spearman ρ| from which a curve "tracks" the reference, and below which it is "weak".
TRACK_RHO = 0.7
WEAK_RHO = 0.5

AGREE, DISAGREE, INCONCLUSIVE = "Agrees", "Disagrees", "Inconclusive"


def _fmt(v: Any, digits: int = 3) -> str:
    """A number for a sentence: ``digits`` significant digits (whole numbers from 100 to 99,999,
    scientific notation beyond)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    v = float(v)
    if v == 0:
        return "0"
    if 100 <= abs(v) < 1e5:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def _rho(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.2f}"


__all__ = ["AGREE", "DISAGREE", "INCONCLUSIVE", "TRACK_RHO", "WEAK_RHO"]
