"""Training: the GAN trainer, its checkpoints, the task hooks of models that do not map noise, and
the metric-tracking callbacks.

- :mod:`.trainer` — :class:`Trainer` (the loop every architecture shares: Adam, ``n_critic``, EMA,
  NaN guard, resume, DDP, AMP) and :class:`TrainConfig`.
- :mod:`.checkpoints` — the newest good checkpoint of a model folder, :func:`load_generator`,
  :func:`load_discriminator`, seeded :func:`sample`, the training log.
- :mod:`.run` — :func:`train_model`: one model on one dataset with a profile's settings.
- :mod:`.tasks` — training hooks of models that modify real images (ModNet's frozen-classifier loss).
- :mod:`.tracking` — :class:`~.tracking.MetricTracker`, the callback that scores G and D during
  training (seed 001's question; its analysis is in :mod:`ganreport.studies.critic`).

The names below are the training API (``train.Trainer``, ``train.sample``, ...).
"""

from .checkpoints import CKPT_GLOB, checkpoint_sha256, latest_checkpoint, load_discriminator, load_generator, read_log, sample
from .run import train_model
from .tasks import TASKS
from .trainer import AMP_DTYPES, Callback, TrainConfig, Trainer, TrainResult, pick_device

__all__ = ["AMP_DTYPES", "CKPT_GLOB", "Callback", "TASKS", "TrainConfig", "TrainResult", "Trainer", "checkpoint_sha256",
           "latest_checkpoint", "load_discriminator", "load_generator", "pick_device", "read_log", "sample", "train_model"]
