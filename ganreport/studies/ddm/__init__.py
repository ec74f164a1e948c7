"""The DDM study of the ModNet thesis (seed 004, chapter 3, ``../shared/research/004_*``),
reproduced on MNIST. One file per research question, each with its experiment, plot and verdict:

- :mod:`.embeddings` — 1. the embedding networks (the cached feature classifier of notebook 02 plus
  classifiers of other architectures/seeds; thesis §3.4.4 wants all at ≥ 98 %), and 4. whether DDM
  orders the models the same on logits, pre-logits, hypercolumns and each network's logits
  (Kendall τ, §3.4.3–3.4.4). The networks themselves are trained in :mod:`.networks`.
- :mod:`.training` — 2. DCGAN, weakened DCGAN (no BatchNorm in G) and small DCGAN (one layer fewer)
  scored every ``every`` steps: DDM (eq. 3.4) on every embedding, FID, IS and Parzen-window
  log-likelihoods against the real-train-vs-test baseline (Figs. 3.3, 3.6; the thesis ranks DCGAN
  < small < weakened, lower DDM is better).
- :mod:`.likelihood` — 3. AIS log-likelihood of each final generator under ``N(x; G(z), σ²I)`` for
  several σ (Fig. 3.5: the estimate moves by many nats with σ); do likelihoods track quality?
- :mod:`.modes` — 5. n distinct training images replicated to the set size: IS, DDM, FID and KID,
  and where each saturates (§3.4.5, Fig. 3.7).
- :mod:`.corruption` — 6. Gaussian noise, uniform noise and Gaussian blur on held-out real images:
  DDM change per unit σ in nats and bits (§3.4.6).
- :mod:`.table` — Table 3.1 for the study's architectures, read from what notebook 02 wrote: DDM,
  IS and FID with ranks, and the missing-modes curve.
- :mod:`.context` (the shared :class:`Study` state: networks, real data, embeddings, ``score``),
  :mod:`.common` (settings, result files, formatters), :mod:`.run` (:func:`train_ddm_study` trains
  the networks and models in notebook 01; :func:`run_ddm_study` scores 1–6 for a profile in notebook
  02, skipping results already on disk with the same settings;
  :func:`load_ddm_study` reads them for notebook 04).

Units: DDM is in nats (a KL estimate with a constant dropped, so only differences and orderings
mean something); 1 bit = ln 2 nats. Parzen and AIS log-likelihoods are nats per image with pixels
in [0, 1]. Noise σ is in [0, 1] intensity units, blur σ in pixels. The names below are the
study's API, as notebooks 01, 02 and 04 call it (``ddm.run_ddm_study(prof)``).
"""

from .common import (CLASSIFIER_TRAIN_DEFAULTS, LABELS, LN2, STUDY_DEFAULTS, THESIS_ORDER, UNITS, resolve_settings,
                     settings, single_thread, study_dir)
from .context import Study, prepare
from .corruption import corrupt, corruption_slopes, corruptions, plot_corruptions, verdict_corruptions
from .embeddings import (agreement, classifiers, embedding_agreement, plot_agreement, plot_embeddings, plot_networks,
                         verdict_agreement, verdict_networks)
from .likelihood import ais, ais_spread, plot_likelihoods, verdict_likelihoods
from .modes import DIRECTION, missing_modes, modes_summary, plot_missing_modes, saturation, verdict_missing_modes
from .networks import train_embedding_net
from .run import load_ddm_study, run_ddm_study, train_ddm_study, verdicts
from .table import ROLES, ddm_table, missing_modes_curve, plot_ddm, verdict_ddm
from .training import (DDMCallback, final_values, ordering, over_training, plot_over_training, tracking_tau,
                       train_variants, verdict_ranking)

__all__ = [
    "CLASSIFIER_TRAIN_DEFAULTS", "LABELS", "LN2", "STUDY_DEFAULTS", "THESIS_ORDER", "UNITS", "resolve_settings",
    "settings", "single_thread", "study_dir", "Study", "prepare", "corrupt", "corruption_slopes", "corruptions",
    "plot_corruptions", "verdict_corruptions", "agreement", "classifiers", "embedding_agreement", "plot_agreement",
    "plot_embeddings", "plot_networks", "verdict_agreement", "verdict_networks", "ais", "ais_spread",
    "plot_likelihoods", "verdict_likelihoods", "DIRECTION", "missing_modes", "modes_summary", "plot_missing_modes",
    "saturation", "verdict_missing_modes", "train_embedding_net", "load_ddm_study", "run_ddm_study",
    "train_ddm_study", "train_variants", "verdicts",
    "ROLES", "ddm_table", "missing_modes_curve", "plot_ddm", "verdict_ddm", "DDMCallback", "final_values",
    "ordering", "over_training", "plot_over_training", "tracking_tau", "verdict_ranking",
]
