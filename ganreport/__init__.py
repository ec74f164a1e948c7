"""ganreport: train several GAN architectures and compare their sample quality and interpretability."""

__version__ = "0.1.0"
