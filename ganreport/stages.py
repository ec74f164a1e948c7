"""What each notebook reads and writes, from the resolved profile: the first cell after a notebook's
parameters shows :func:`describe`, so a reader sees a notebook's cost and files before running it.

The lists are built from :mod:`ganreport.config`'s paths and the :class:`~ganreport.settings.Profile`
(models, dataset, enabled studies), not typed into the notebooks. ``TRAINS`` says which notebooks
still train something outside notebook 01 (issue #33 moves that training into 01).
"""

from __future__ import annotations

from pathlib import Path

from . import config
from .errors import ConfigError
from .settings import Profile

NOTEBOOK_STAGES = {"01_train": "trains", "02_quantitative": "scores", "03_qualitative": "scores",
                   "04_comparison": "only reads"}
#: training that still happens outside notebook 01, per notebook (shown so the cost is visible)
TRAINS = {
    "02_quantitative": ("the capacity grid of seed 001 (experiments.grid, when enabled)",
                        "the DDM study's DCGAN variants and embedding networks (ddm_study)"),
    "03_qualitative": ("ModNet fine-tunes of the λ trade-off and the augmentation study's LeNet-5 classifiers (modnet)",),
}


def _rel(path: Path) -> str:
    try:
        return str(Path(path).relative_to(config.PROJ_ROOT))
    except ValueError:
        return str(path)


def files(notebook: str, prof: Profile) -> dict[str, list[str]]:
    """``{"reads": [...], "writes": [...]}``: the folders and files ``notebook`` uses for ``prof``."""
    if notebook not in NOTEBOOK_STAGES:
        raise ConfigError(f"unknown notebook {notebook!r}; known: {', '.join(NOTEBOOK_STAGES)}")
    run = config.RUNS_DIR / prof.profile
    models = [run / prof.dataset / m for m in prof.models]
    shapes = [run / prof.dissection.dataset / m for m in prof.dissection.models]
    cache = config.CACHE_DIR
    metrics = run / "metrics.jsonl"
    figures = run / "figures"
    exp, grid, lime = run / "experiments", prof.experiments.grid.enabled, prof.experiments.lime.enabled
    if notebook == "01_train":
        reads = [f"the {prof.dataset} and {prof.dissection.dataset} training splits"]
        writes = [*(m / "checkpoints" for m in models), *(m / "checkpoints" for m in shapes),
                  cache / "classifier", cache / "segmenter", figures / "01_*.png"]
    elif notebook == "02_quantitative":
        reads = [*(m / "checkpoints" for m in models), cache / "classifier", cache / "features"]
        writes = [metrics, *([exp / "capacity_grid.csv", exp / "grid"] if grid else []),
                  *([exp / "lime_across_critics.csv"] if lime and grid else []), run / "ddm_study",
                  cache / "ddm_study_classifiers", run / "02_validation_*.csv", figures / "02_*.png"]
    elif notebook == "03_qualitative":
        reads = [*(m / "checkpoints" for m in models), *(m / "checkpoints" for m in shapes), cache / "segmenter"]
        writes = [metrics, run / "qualitative" / "03_*.png", run / "qualitative" / "*.npz",
                  run / "qualitative" / "dissection", run / "modnet"]
    else:
        reads = [metrics, *([exp / "capacity_grid.csv"] if grid else []),
                 *([exp / "lime_across_critics.csv"] if lime and grid else []), run / "ddm_study" / "summary.json",
                 run / "modnet"]
        writes = [figures / "04_*.png"]
    return {"reads": [x if isinstance(x, str) else _rel(x) for x in reads],
            "writes": [_rel(x) for x in writes]}


def describe(notebook: str, prof: Profile) -> str:
    """Markdown for the notebook's first cell: its stage, what it reads and writes, what it trains."""
    f = files(notebook, prof)
    lines = [f"**This notebook {NOTEBOOK_STAGES[notebook]}** (profile `{prof.profile}`, models "
             f"{', '.join(prof.models)}).", "", "- reads: " + ", ".join(f"`{x}`" for x in f["reads"]),
             "- writes: " + ", ".join(f"`{x}`" for x in f["writes"])]
    if notebook in TRAINS:
        lines.append("- also trains (to move into notebook 01): " + "; ".join(TRAINS[notebook]))
    return "\n".join(lines)
