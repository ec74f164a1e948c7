"""ModNet experiments (seed 004, chapter 2, §2.5, ``../shared/research/004_*``): fooling examples,
transfer, the λ trade-off, data augmentation and memorisation — one call per notebook cell. Each
file answers one question of the thesis: can a small delta fool a classifier, and does it transfer
to another one (:mod:`.fooling_examples`)? how does the L1 weight trade class change against
closeness (:mod:`.tradeoff`)? do generated images help a classifier trained on few real ones
(:mod:`.augmentation`)? does ModNet copy training images (:mod:`.memorization`)?

The model itself is :mod:`ganreport.models.modnet` (trained like every architecture with
``train.train_model("modnet", "mnist", prof)``). The ``train_*`` functions train (notebook 01);
everything else reads the trained checkpoints of a profile, writes its results atomically under
``config.run_dir(profile)/modnet/`` and returns a DataFrame or a small result object; the ``plot_*`` functions return figures.

Submodules:

- :mod:`.common` — profile settings (:data:`MODNET_DEFAULTS`), ``out_dir``, loading the trained ModNet,
  its samples, the frozen and transfer classifiers, and ``change_stats`` (L1 / L2 / SSIM of a change);
- :mod:`.fooling_examples` — every source x target modification scored by both classifiers: ``fooling``, its table
  and figures;
- :mod:`.tradeoff` — the L1 weight λ: fine-tune per λ (notebook 01), score class change vs closeness
  (notebook 03), plot;
- :mod:`.augmentation` — LeNet-5 trained on few real images without / with generated images (notebook
  01), their test accuracy (notebook 03), table, plot;
- :mod:`.memorization` — nearest training images of modified images: check and figure.
"""

from .augmentation import (LeNet5, augmentation_experiment, augmentation_table, plot_augmentation,
                           train_augmentation_classifiers, train_eval_classifier, train_lenet)
from .common import (MODEL, MODNET_DEFAULTS, change_stats, frozen_classifier, load_modnet, out_dir, samples,
                     settings, transfer_classifier)
from .fooling_examples import FoolingResult, fooling, fooling_table, plot_fooling_grid, plot_fooling_matrix
from .memorization import MemorizationResult, memorization_check, plot_memorization
from .tradeoff import lambda_tradeoff, plot_tradeoff, train_lambda_finetunes

__all__ = ["MODEL", "MODNET_DEFAULTS", "settings", "out_dir", "load_modnet", "samples", "frozen_classifier",
           "transfer_classifier", "change_stats", "FoolingResult", "fooling", "fooling_table", "plot_fooling_grid",
           "plot_fooling_matrix", "train_lambda_finetunes", "lambda_tradeoff", "plot_tradeoff", "LeNet5",
           "train_lenet", "train_eval_classifier", "train_augmentation_classifiers", "augmentation_experiment",
           "augmentation_table", "plot_augmentation", "MemorizationResult", "memorization_check", "plot_memorization"]
