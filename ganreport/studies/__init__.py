"""The replicated studies, one folder each; every file answers one research question with its
computation, plot and verdict sentence (``../shared/DESIGN.md``: "a study is a folder").

- :mod:`.critic` — seed 001 (Liaudanskas 2018): which metrics track WGAN-GP's convergence, how
  large the critic must be, and what critics of different capacity look at (LIME).
- :mod:`.ddm` — seed 004, chapter 3 (the ModNet thesis): the Distribution Divergence Measure
  against likelihoods, embeddings, missing modes and corruptions, and its Table 3.1.
- :mod:`.modnet` — seed 004, chapter 2: ModNet's fooling examples and transfer, the λ trade-off,
  augmentation and memorisation.
- :mod:`.quant_qual` — seed 000: do the architectures rank the same by sample quality and by the
  interpretability measures?
- :mod:`.verdict_text` — the verdict labels, thresholds and number formatters every study shares.

Studies sit above ``evaluate`` and below ``compare`` in the layer order: they never import
:mod:`ganreport.compare`; the row statistics they share with it are in :mod:`ganreport.stats`.
"""
