"""Each notebook does its own stage (issue #33): 01 trains, 02 and 03 score, 04 only reads.

The static test reads every code cell of a notebook with :mod:`ast` and lists the training entry
points it calls; notebook 04 may call none of them, nor anything that computes a result. The
execution test runs notebook 04 on a finished smoke run (``make test`` runs it after nbval has
executed 01-03) in a kernel where every optimiser step raises and the trainer cannot be built, and
checks that no checkpoint was written or changed.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import nbformat
import pytest

from ganreport import config, stages

#: functions that train a network (a GAN, a classifier, a fine-tune): only notebook 01 calls them
TRAINING = {"train_model", "Trainer", "train_capacity_grid", "train_ddm_study", "train_variants",
            "train_lambda_finetunes", "train_augmentation_classifiers", "train_lenet", "train_eval_classifier",
            "train_classifier", "train_embedding_net", "train_segmenter", "load_segmenter", "fit"}
#: functions that compute a result (04 reads what 02 and 03 wrote instead)
COMPUTING = TRAINING | {"capacity_grid", "run_ddm_study", "over_training", "lambda_tradeoff", "augmentation_experiment",
                        "lime_across_critics", "fooling", "memorization_check", "evaluate_model", "evaluate_all",
                        "run_dissection", "real_baselines", "load_real"}
#: loaders that train what is missing unless told not to: (function, keyword that must be False)
TRAIN_IF_MISSING = {"classifier": "train_if_missing", "get_extractor": "train_if_missing",
                    "run_dissection": "train_segmenter"}


def nodes_in(source: str) -> list[ast.AST]:
    return list(ast.walk(ast.parse(source)))


def nodes(notebook: str) -> list[ast.AST]:
    """Every syntax node of the notebook's code cells."""
    nb = nbformat.read(config.NOTEBOOKS_DIR / f"{notebook}.ipynb", as_version=4)
    return [node for cell in nb.cells if cell.cell_type == "code" for node in nodes_in(cell.source)]


def calls(notebook: str) -> list[ast.Call]:
    return [n for n in nodes(notebook) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def called_names(notebook: str) -> set[str]:
    return {_name(c) for c in calls(notebook)}


def loaders_that_may_train(tree: list[ast.AST]) -> list[str]:
    """Calls of a loader that trains what is missing, without its keyword set to ``False``; for
    ``load_real`` a dict literal ``{"train_if_missing": False}`` (notebook 02's extractor options)."""
    found = []
    nb_calls = [n for n in tree if isinstance(n, ast.Call)]
    passed_on = any(isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "train_if_missing"
                                                       and isinstance(v, ast.Constant) and v.value is False
                                                       for k, v in zip(node.keys, node.values))
                    for node in tree)
    for c in nb_calls:
        kw = TRAIN_IF_MISSING.get(_name(c))
        if kw is None:
            continue
        ok = any(k.arg == kw and isinstance(k.value, ast.Constant) and k.value.value is False for k in c.keywords)
        if not ok:
            found.append(f"{_name(c)}(...) without {kw}=False")
    if any(_name(c) == "load_real" for c in nb_calls) and not passed_on:
        found.append('load_real(...) without {"train_if_missing": False} in its extractor options')
    return found


def test_notebook_04_only_reads():
    found = called_names("04_comparison") & COMPUTING
    assert not found, f"notebook 04 computes or trains: {sorted(found)}"


@pytest.mark.parametrize("notebook", ["02_quantitative", "03_qualitative"])
def test_scoring_notebooks_do_not_train(notebook):
    found = called_names(notebook) & TRAINING
    assert not found, f"notebook {notebook} trains: {sorted(found)}"
    may_train = loaders_that_may_train(nodes(notebook))
    assert not may_train, f"notebook {notebook} loads with training as a fallback: {may_train}"


def test_the_static_check_sees_training():
    names = called_names("01_train")
    assert {"train_model", "train_capacity_grid", "train_ddm_study", "train_lambda_finetunes",
            "train_augmentation_classifiers", "load_segmenter", "classifier"} <= names
    found = loaders_that_may_train(nodes_in('features.get_extractor("classifier", dataset="mnist")\n'
                                            'dissect.run_dissection(p, m, train_segmenter=False)\n'
                                            'evaluate.load_real("mnist", "classifier", 0, {"epochs": 1})'))
    assert found == ["get_extractor(...) without train_if_missing=False",
                     'load_real(...) without {"train_if_missing": False} in its extractor options']
    assert not loaders_that_may_train(nodes_in('evaluate.load_real("mnist", "classifier", 0, '
                                               '{"epochs": 1, "train_if_missing": False})'))


@pytest.mark.parametrize("name", list(stages.NOTEBOOK_STAGES))
def test_first_cell_after_parameters_states_reads_and_writes(name):
    nb = nbformat.read(config.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert f'stages.describe("{name}", prof)' in nb.cells[i + 1].source


def test_describe_follows_the_profile():
    smoke = config.resolve("smoke")
    f = stages.files("04_comparison", smoke)
    assert f["writes"] == ["runs/smoke/figures/04_*.png"] or all("04_" in w for w in f["writes"])
    assert any(r.endswith("metrics.jsonl") for r in f["reads"])
    text = stages.describe("01_train", smoke)
    assert all(m in text for m in smoke.models) and "shapes/dcgan/checkpoints" in text
    assert "ddm_study/train" in stages.describe("01_train", smoke) and "ddm_study/train" in stages.describe(
        "02_quantitative", smoke)  # 01 writes the DDM study's models, 02 reads them
    with pytest.raises(Exception, match="unknown notebook"):
        stages.files("05_nope", smoke)


GUARD = '''
import torch
import ganreport.train.trainer as _trainer

def _forbidden(*args, **kwargs):
    raise RuntimeError("notebook 04 must only read result files, but it started training")

torch.optim.Optimizer.step = _forbidden
_trainer.Trainer.__init__ = _forbidden
'''


def _finished_smoke_run() -> bool:
    """Notebooks 01-03 have run for ``smoke``: their result files are on disk."""
    run = config.RUNS_DIR / "smoke"
    return all(p.exists() for p in (run / "metrics.jsonl", run / "ddm_study" / "summary.json", run / "modnet"))


@pytest.mark.skipif(not _finished_smoke_run() and not os.environ.get("GANREPORT_REQUIRE_SMOKE_RUN"),
                    reason="needs a finished smoke run (make test runs this after nbval, where it is required)")
def test_notebook_04_runs_without_training_or_writing_checkpoints():
    from nbclient import NotebookClient

    assert _finished_smoke_run(), f"no finished smoke run under {config.RUNS_DIR}: run notebooks 01-03 first"
    nb = nbformat.read(config.NOTEBOOKS_DIR / "04_comparison.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(GUARD))
    before = {p: p.stat().st_mtime_ns for p in Path(config.RUNS_DIR).rglob("*.safetensors")}
    NotebookClient(nb, kernel_name="ganreport", timeout=600,
                   resources={"metadata": {"path": str(config.NOTEBOOKS_DIR)}}).execute()
    after = {p: p.stat().st_mtime_ns for p in Path(config.RUNS_DIR).rglob("*.safetensors")}
    assert after == before, "notebook 04 wrote or changed checkpoints"
    for path in stages.files("04_comparison", config.resolve("smoke"))["reads"]:  # what its first cell promises
        assert (config.PROJ_ROOT / path).exists(), f"notebook 04 says it reads {path}, which is not there"
