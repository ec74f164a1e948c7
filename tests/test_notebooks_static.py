"""Static checks of the committed notebooks: thin, no outputs, parameters mirror the smoke profile."""

import ast
import json

import pytest

from ganreport import config

NOTEBOOKS = sorted(config.NOTEBOOKS_DIR.glob("*.ipynb"))


def parameters_cell(nb):
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    return cells[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_thin_and_clean(path):
    nb = json.loads(path.read_text())
    assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")
    assert nb["cells"][1] is parameters_cell(nb), "the parameters cell follows the title"
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            assert not c.get("outputs"), f"{path.name} is committed with outputs"
            tree = ast.parse("".join(c["source"]))
            defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
            assert not defs, f"{path.name} defines {defs[0].name}; move it into ganreport/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameter_defaults_equal_smoke_profile(path):
    nb = json.loads(path.read_text())
    ns: dict = {}
    exec("".join(parameters_cell(nb)["source"]), {}, ns)
    smoke = config.profile_params("smoke")
    shared = set(ns) & set(smoke)
    assert "profile" in shared
    for k in shared:
        if isinstance(smoke[k], dict) and isinstance(ns[k], dict):
            assert {m: v for m, v in smoke[k].items() if m in ns[k]} == {m: ns[k][m] for m in smoke[k] if m in ns[k]}, k
        else:
            assert ns[k] == smoke[k], f"{path.name}: {k} = {ns[k]!r} but smoke.yaml has {smoke[k]!r}"
    missing = set(ns) - set(smoke)
    assert not missing, f"{path.name}: parameters {missing} are missing from profiles/smoke.yaml"


def test_profiles_share_keys():
    keys = [set(config.profile_params(p)) for p in config.PROFILES]
    assert keys[0] == keys[1] == keys[2]
