"""GAN Dissection (Bau et al. 2019, ICLR) with bounded memory, plus the cheaper route of its review.

Method (Bau et al. 2019 "GAN Dissection: Visualizing and Understanding Generative Adversarial
Networks", §2; thresholds as in Bau et al. 2017 "Network Dissection", §2.2):

1. **Dissection** (:mod:`.iou`, formula there). Unit × concept IoU of the thresholded, upsampled
   activation with the concept's segmentation over many seeded samples; a unit is *interpretable*
   when its best IoU exceeds 0.05. Two passes with a streaming quantile sketch keep memory
   independent of the number of samples (research 002, §4.2).
2. **Interventions** (Bau et al. 2019, §2.2). At positions ``P`` of layer ``l`` and for a unit set
   ``U`` with coefficients ``α_u ∈ [0, 1]`` (1 for hard interventions):
   ``r'_{u,P} = (1 − α_u) r_{u,P} + α_u k_u`` — ablation ``k_u = 0``, insertion ``k_u`` = a high
   per-unit value (default: the unit's mean activation where it is above its threshold,
   ``E[r_u | r_u ≥ t_u]``, close to the paper's choice of the unit's typical value inside the
   concept; a fixed quantile such as the 99th percentile is 0 for units that fire on fewer than
   1 % of positions). The effect is measured on
   the concept's pixel share ``s̄_c(x)`` in the segmentation of the output:

       ablation  ACE = E_z[ s̄_c(G(z)) ] − E_z[ s̄_c(G_{U:=0}(z)) ]        (concept removed, > 0)
       insertion ACE = E_z[ s̄_c(G_{U:=k}(z)) ] − E_z[ s̄_c(G(z)) ]        (concept created, > 0)

   compared with ``k`` random units of the same layer.
3. **Optimal causal unit set** (Bau et al. 2019, §2.2, eq. 4): learn ``α ∈ [0, 1]^d`` minimising
   ``∓ E_z[ŝ_c(G_α(z))] + λ ‖α‖²`` (insertion: −, ablation: +) where ``ŝ_c`` is the differentiable
   soft pixel share (mean softmax probability of ``c``); projected Adam. Units are ranked by α.
4. **Context test** (Bau et al. 2019, §4.3, "doors in the sky"): insert a concept's units in one
   cell of the layer where the unedited image shows context A (e.g. a house) or B (the sky) and
   count how often the concept appears there.
5. **Cheaper route** (review, research 003): dissect only the last layer, then attribute the
   concept to earlier units by gradient × activation, ``A(u, c) = E_z Σ_{h,w} r_u ∂S_c/∂r_u``,
   with ``S_c`` the soft pixel share of ``c`` (``target="share"``) or the IoU-weighted activation
   of the last layer's units for ``c`` (``target="last_layer"``); compare with full dissection by
   Spearman rank correlation and top-k overlap.

Streaming quantiles: :class:`QuantileSketch` is a vectorised DDSketch (Masson, Rim & Lee 2019,
VLDB, "DDSketch: a fast and fully-mergeable quantile sketch with relative-error guarantees"):
log-spaced bins give every quantile estimate a relative error ≤ ``rel_acc`` in a fixed number of
counters per unit.

Submodules (one per step):

- :mod:`.sketch` — :class:`QuantileSketch`, streaming per-unit quantiles (DDSketch).
- :mod:`.hooks` — generator layers, record / intervene hooks, seeded latents, concept lookup.
- :mod:`.iou` — step 1: :func:`dissect` (unit × concept IoU), layer summaries.
- :mod:`.causal` — step 2: ablation / insertion ACE (:func:`causal_effect`, :func:`ace_vs_k`).
- :mod:`.alpha` — step 3: optimal causal unit set α, rank comparisons (top-k overlap, Spearman).
- :mod:`.context` — step 4: the context test ("doors in the sky"), Wilson intervals, veto table.
- :mod:`.cheap` — step 5: the cheaper route (last layer dissected, earlier layers attributed).
- :mod:`.plots` — figures and :func:`units_to_show`.
- :mod:`.run` — :func:`run_dissection` over a profile's generators, :class:`DissectionReport`.
"""

from .alpha import AlphaResult, compare_alpha_iou, optimal_unit_set, spearman, topk_overlap
from .causal import MODES, Effect, ace_vs_k, causal_effect, concept_share
from .cheap import CheapRoute, attribute_units, cheap_route, route_agreement
from .context import DOOR_CONTEXTS, TREE_CONTEXTS, context_test, veto_table, wilson
from .hooks import (
    Z_BLOCK, check_layers, concept_index, generator_layers, intervene, last_hidden_layer, latents, layer_units,
    record_layers, unit_alpha,
)
from .iou import LayerDissection, default_layer, dissect, layer_summary, most_disentangled
from .plots import (
    plot_ace_vs_k, plot_context, plot_iou_histograms, plot_layer_comparison, plot_unit_examples, units_to_show,
)
from .run import SECTION, DissectionReport, cheap_summary, dissection_dir, run_dissection
from .sketch import QuantileSketch

__all__ = [
    "QuantileSketch", "LayerDissection", "Effect", "AlphaResult", "DissectionReport", "CheapRoute", "MODES", "SECTION",
    "Z_BLOCK", "DOOR_CONTEXTS", "TREE_CONTEXTS", "dissect", "layer_summary", "most_disentangled", "default_layer",
    "concept_share", "causal_effect", "ace_vs_k", "optimal_unit_set", "cheap_summary", "compare_alpha_iou",
    "context_test", "veto_table", "attribute_units", "route_agreement", "last_hidden_layer", "layer_units",
    "cheap_route", "run_dissection", "record_layers", "intervene", "unit_alpha", "latents", "check_layers",
    "concept_index", "generator_layers", "topk_overlap", "spearman", "wilson", "plot_iou_histograms",
    "plot_unit_examples", "plot_ace_vs_k", "plot_context", "plot_layer_comparison", "units_to_show", "dissection_dir",
]
