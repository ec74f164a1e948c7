import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def mnist_train():
    from ganreport import data

    return data.load("mnist", "train")


@pytest.fixture(scope="module")
def tmp_cache(tmp_path_factory):
    """A temporary classifier cache and runs folder for one test module (restored afterwards)."""
    from ganreport import config

    root = tmp_path_factory.mktemp("cache_runs")
    old = config.CACHE_DIR, config.RUNS_DIR
    config.CACHE_DIR, config.RUNS_DIR = root / "cache", root / "runs"
    try:
        yield root
    finally:
        config.CACHE_DIR, config.RUNS_DIR = old
