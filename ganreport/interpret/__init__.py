"""Interpretability of trained GANs: what the discriminator/critic looks at, and how the latent
space is organised.

- :mod:`.saliency` — gradient, SmoothGrad (captum ``NoiseTunnel(Saliency)``), integrated gradients.
- :mod:`.lime` — LIME (captum ``Lime``) on SLIC superpixels or a square grid.
- :mod:`.measures` — deletion/insertion curves, concentration, model-randomisation sanity check;
  tidy result rows for ``runs/<profile>/metrics.jsonl`` (``section='qualitative'``).
- :mod:`.latent` — lerp/slerp, sweeps, attribute vectors, circles, StyleGAN W / mixing /
  truncation, perceptual path length.
- :mod:`.neighbours` — nearest training images of generated images (pixel L2 or features).

Every random draw is seeded; captum's own draws (SmoothGrad noise) run inside
``torch.random.fork_rng`` so the global generator is left untouched.
"""

from .base import METHODS, attribute, check_images, model_img_shape, save_arrays, score_function  # noqa: F401
from . import saliency, lime  # noqa: E402,F401  (register the attribution methods)

__all__ = ["METHODS", "attribute", "check_images", "model_img_shape", "save_arrays", "score_function"]
