"""The critic studies of seed 001 (Liaudanskas 2018, "Approaches to understanding GANs",
``../shared/research/001_*``), replicated on WGAN-GP. One file per research question:

- :mod:`.tracking` — *Which metrics track convergence?* FID, KID, IS, DDM and the critic statistics
  recorded during training by :class:`ganreport.train.tracking.MetricTracker` (the trainer callback, in
  the training layer); Spearman ρ of each curve with the FID of a large held-out sample, the
  visual-quality proxies, the critic's offset from zero, their plot and verdicts. Published: "FID
  and KID are the most suitable metrics for tracking the convergence ... metrics based on the
  activations of the critic are shown to be uninformative"; "the equilibrium for the critic's
  decisions was found to be at an offset from zero, especially for smaller architectures".
- :mod:`.capacity` — *How large must the critic be?* A grid of generator width × critic size (the
  critic's parameter count as a ratio of the generator's), equal steps per cell (trained by
  :func:`train_capacity_grid` in notebook 01, scored by :func:`capacity_grid` in notebook 02), final
  FID/KID against the training FLOPs, efficiency and verdict. Published: "the critic at at least about
  half of generator's capacity ... no advantage in having the critic more powerful".
- :mod:`.lime_critics` — *Do critics of different capacity look at the same features?* LIME on
  the critics of the grid: concentration, overlap of their top superpixels against chance, the
  share on the digit strokes ("the critic appears to mostly focus on the data features that make
  intuitive sense").
- :mod:`.common` — the profile's ``experiments`` block and the settings-keyed cache of result
  files under ``runs/<profile>/experiments/``.

The verdict labels and number formatters shared by every study are in
:mod:`ganreport.studies.verdict_text`. Each ``verdict_*`` function returns one sentence that says
whether the data agree with the published finding, every number formatted from its input. The
names below are the study's API, as notebooks 01, 02 and 04 call it (``critic.capacity_grid(...)``).
"""

from .capacity import (FID_TOL, HALF_BAND, capacity_efficiency, capacity_grid, critic_params, critic_width_for_ratio,
                       generator_params, grid_plan, grid_tracking, load_capacity_grid, plot_capacity_grid,
                       train_capacity_grid, train_step_flops, verdict_capacity)
from .lime_critics import (LimeAcross, chance_jaccard, lime_across_critics, load_lime_across_critics,
                           plot_lime_across_critics, stroke_share, superpixel_weights, top_jaccard, verdict_lime)
from .common import DEFAULT_GRID, DEFAULT_LIME, DEFAULTS, experiments_dir, settings
from .tracking import (critic_offset_summary, plot_tracking, tracking_correlations, tracking_frame, verdict_offset,
                       verdict_tracking)

__all__ = [
    "settings", "experiments_dir", "DEFAULT_GRID", "DEFAULT_LIME", "DEFAULTS",
    "tracking_frame", "tracking_correlations", "critic_offset_summary", "plot_tracking", "verdict_tracking",
    "verdict_offset",
    "generator_params", "critic_params", "critic_width_for_ratio", "grid_plan", "train_step_flops",
    "train_capacity_grid", "capacity_grid",
    "grid_tracking", "load_capacity_grid", "plot_capacity_grid", "capacity_efficiency", "verdict_capacity", "FID_TOL", "HALF_BAND",
    "LimeAcross", "superpixel_weights", "top_jaccard", "chance_jaccard", "stroke_share", "lime_across_critics",
    "load_lime_across_critics",
    "plot_lime_across_critics", "verdict_lime",
]
