"""What each notebook reads and writes, from the resolved profile: the first cell after a notebook's
parameters shows :func:`describe`, so a reader sees a notebook's cost and files before running it.

The lists are built from :mod:`ganreport.config`'s paths and the :class:`~ganreport.settings.Profile`
(models, dataset, enabled studies), not typed into the notebooks. Every network is trained by notebook
01 (the main and ``shapes`` models, the feature and transfer classifiers, the capacity grid, the DDM
study's networks and DCGAN variants, the ModNet fine-tunes and augmentation classifiers); 02 and 03
load and score; 04 reads result files (``tests/test_notebook_stages.py`` checks all three).
"""

from __future__ import annotations

from pathlib import Path

from . import config
from .errors import ConfigError
from .settings import Profile

NOTEBOOK_STAGES = {"01_train": "trains", "02_quantitative": "scores", "03_qualitative": "scores",
                   "04_comparison": "only reads"}


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
    tuned, aug = run / "modnet" / "tradeoff", run / "modnet" / "augmentation"
    if notebook == "01_train":
        reads = [f"the {prof.dataset} and {prof.dissection.dataset} training splits"]
        writes = [*(m / "checkpoints" for m in models), *(m / "checkpoints" for m in shapes),
                  cache / "classifier", cache / "segmenter", *([exp / "grid"] if grid else []),
                  run / "ddm_study" / "train", cache / "ddm_study_classifiers", tuned, aug, figures / "01_*.png"]
    elif notebook == "02_quantitative":
        reads = [*(m / "checkpoints" for m in models), cache / "classifier", cache / "features",
                 *([exp / "grid"] if grid else []), run / "ddm_study" / "train", cache / "ddm_study_classifiers"]
        writes = [metrics, *([exp / "capacity_grid.csv"] if grid else []),
                  *([exp / "lime_across_critics.csv"] if lime and grid else []), run / "ddm_study" / "*.json",
                  run / "02_validation_*.csv", figures / "02_*.png"]
    elif notebook == "03_qualitative":
        reads = [*(m / "checkpoints" for m in models), *(m / "checkpoints" for m in shapes), cache / "classifier",
                 cache / "segmenter", tuned, aug]
        writes = [metrics, run / "qualitative" / "03_*.png", run / "qualitative" / "*.npz",
                  run / "qualitative" / "dissection", run / "modnet" / "*.csv", run / "modnet" / "*.npz"]
    else:
        reads = [metrics, *([exp / "capacity_grid.csv"] if grid else []),
                 *([exp / "lime_across_critics.csv"] if lime and grid else []), run / "ddm_study" / "summary.json",
                 run / "modnet"]
        writes = [figures / "04_*.png"]
    return {"reads": [x if isinstance(x, str) else _rel(x) for x in reads],
            "writes": [_rel(x) for x in writes]}


def describe(notebook: str, prof: Profile) -> str:
    """Markdown for the notebook's first cell: its stage and what it reads and writes."""
    f = files(notebook, prof)
    lines = [f"**This notebook {NOTEBOOK_STAGES[notebook]}** (profile `{prof.profile}`, models "
             f"{', '.join(prof.models)}).", "", "- reads: " + ", ".join(f"`{x}`" for x in f["reads"]),
             "- writes: " + ", ".join(f"`{x}`" for x in f["writes"])]
    return "\n".join(lines)
