"""Training hooks of architectures that do not simply map noise to images (``ModelSpec.task``).

A model names its task (``ModelSpec.task = "modnet"``); the :class:`~ganreport.train.Trainer`
builds the registered hooks with ``TASKS.get(name)(trainer)``. The hooks live here, in the training
layer, because they train against a frozen classifier (a metric's feature network): the model
itself knows nothing of that. A hook receives the trainer and reads ``trainer.data``,
``trainer.params``, ``trainer.G``, ``trainer.images`` and ``trainer.device``; it does not import
the trainer (that would be an import circle).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..models.modnet import random_targets
from ..registry import Registry
from ..metrics.features import classifier as load_classifier

TASKS: Registry[Any] = Registry("training task")


@TASKS.register("modnet")
class ModNetTask:
    """Training hooks the :class:`~ganreport.train.Trainer` calls for ``modnet`` (``ModelSpec.task``).

    - :meth:`latents` — packed inputs ``[x_t, onehot(y_t)]`` of a batch: random training images
      and random targets ``y_t ≠ y``, drawn from the trainer's seeded generator;
    - :meth:`g_loss` — the extra generator terms ``w_label · CE(C(G), y_t) + λ · L1`` with the
      frozen classifier ``C``; also returns batch statistics for the training log;
    - :meth:`meta` — checkpoint metadata (data seed, frozen classifier key and accuracy).
    """

    def __init__(self, trainer: Any) -> None:
        data, p = trainer.data, trainer.params
        if data.labels is None:
            raise DataError(f"modnet needs class labels: dataset {data.name!r} has none")
        g = trainer.G
        n_cls = max(data.num_classes, int(data.labels.max()) + 1)
        if n_cls != g.num_classes:
            raise ConfigError(f"modnet was built for num_classes={g.num_classes} but dataset {data.name!r} has "
                              f"{n_cls} classes; pass num_classes={n_cls}")
        self.data_seed = int(data.meta.get("data_seed", 0))
        self.l1_lambda, self.label_weight = float(p["l1_lambda"]), float(p["label_weight"])
        try:
            ext = load_classifier(dataset=data.name, data_seed=self.data_seed, seed=int(p["classifier_seed"]),
                                  progress=False, **dict(p.get("classifier_kw") or {}))
        except ConfigError as e:
            if "unknown dataset" in str(e) or "no dataset" in str(e):
                raise ConfigError(f"modnet's frozen classifier is trained on the registered dataset of the "
                                  f"training images, but {data.name!r} is not one: {e}") from None
            raise
        if tuple(ext.meta["img_shape"]) != tuple(g.img_shape):
            raise ConfigError(f"frozen classifier expects {tuple(ext.meta['img_shape'])} images, modnet {g.img_shape}")
        self.classifier = ext.model.to(trainer.device).eval().requires_grad_(False)
        self.classifier_meta = {"cache_key": ext.meta["cache_key"], "seed": ext.meta["seed"],
                                "test_accuracy": ext.meta.get("test_accuracy"),
                                "settings": ext.meta.get("settings")}
        self.images = trainer.images
        self.labels = data.labels.to(self.images.device)
        self.G = g

    def latents(self, n: int, rng: torch.Generator, device: torch.device | str) -> torch.Tensor:
        """Packed inputs of ``n`` random training images with random targets (global batch)."""
        idx = torch.randint(len(self.images), (n,), generator=rng)
        t = random_targets(self.labels[idx.to(self.labels.device)].cpu(), self.G.num_classes, rng)
        x = self.images[idx.to(self.images.device)]
        return self.G.pack(x.float(), t.to(x.device)).to(device)

    def g_loss(self, z: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``w_label · CE(C(fake), y_t) + λ · mean|fake − x_t|`` and batch stats (label, l1, fool rate)."""
        x, y = self.G.unpack(z)
        target = y.argmax(1)
        logits = self.classifier(fake.float())
        ce = F.cross_entropy(logits, target)
        l1 = (fake.float() - x.float()).abs().mean()
        stats = {"label_loss": ce.detach(), "l1": l1.detach(),
                 "fool_rate": (logits.argmax(1) == target).float().mean()}  # 0-d tensors: no host sync here
        return self.label_weight * ce + self.l1_lambda * l1, stats

    def meta(self) -> dict[str, Any]:
        return {"data_seed": self.data_seed, "frozen_classifier": self.classifier_meta}
