"""Bad input is one clear line before anything is built (issue #32): every case goes through the CLI
(``python -m ganreport train|report``) and must exit non-zero with a single ``error:`` line that
names what was wrong, never a traceback; the typed blocks of :mod:`ganreport.settings` accept the
three shipped profiles and hold the studies' defaults."""

from __future__ import annotations

import pytest
import yaml

from ganreport import __main__ as cli
from ganreport import config, settings
from ganreport.errors import ConfigError

SMOKE = config.PROFILES_DIR / "smoke.yaml"


def _profile(tmp_path, edit=None, text=None):
    """A profile file: smoke with ``edit(params)`` applied, or the raw ``text``."""
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    else:
        params = yaml.safe_load(SMOKE.read_text())
        edit(params)
        path.write_text(yaml.safe_dump(params))
    return str(path)


def _set(*keys):
    def edit(p):
        node = p
        for k in keys[:-2]:
            node = node.setdefault(k, {})
        node[keys[-2]] = keys[-1]
    return edit


TRAIN = ["train", "--model", "dcgan", "--dry-run"]
# (argv after the command, a profile edit or raw YAML text or None, what the line must contain)
CASES = {
    "negative width": (["--set", "g_width=-3"], None, "g_width = -3: must be an integer >= 1"),
    "width not a number": (["--set", "g_width=abc"], None, "g_width = 'abc': must be an integer"),
    "zero width": (["--set", "g_width=0"], None, "g_width = 0: must be an integer >= 1"),
    "fractional z_dim": (["--set", "z_dim=1.5"], None, "z_dim = 1.5: must be an integer"),
    "lr not a number": (["--set", "lr_g=abc"], None, "lr_g = 'abc': must be a number > 0"),
    "ema out of range": (["--set", "ema=1.5"], None, "ema = 1.5: must be a number >= 0 and < 1"),
    "betas not a pair": (["--set", "betas=0.5"], None, "betas = 0.5: must be two numbers"),
    "unknown model key": (["--set", "g_widht=8"], None, "no parameter 'g_widht' (did you mean g_width?)"),
    "malformed --set": (["--set", "g_width"], None, "--set takes KEY=VALUE"),
    "unknown dataset option": (["--data", "foo=1"], None, "dataset 'mnist' has no option 'foo'"),
    "size not a number": (["--data", "size=abc"], None, "size = 'abc': must be an integer >= 1"),
    "zero size": (["--data", "size=0"], None, "size = 0: must be an integer >= 1"),
    "batch larger than the split": (["--batch-size", "5000"], None, "batch_size 5000 exceeds the 2000 training images"),
    "zero batch": (["--batch-size", "0"], None, "batch_size must be a positive integer"),
    "zero steps": (["--steps", "0"], None, "steps must be a positive integer"),
    "negative seed": (["--seed", "-1"], None, "seed = -1: must be an integer >= 0"),
    "unknown model": (["--model", "nope"], None, "unknown model 'nope'"),
    "unknown dataset": (["--dataset", "nope"], None, "nope"),
    "folder without path": (["--dataset", "folder"], None, "path"),
    "unknown profile": (["--profile", "nope"], None, "unknown profile 'nope'"),
    "batch_size text": ([], _set("batch_size", "abc"), "batch_size = 'abc': must be an integer (>= 1)"),
    "steps text": ([], _set("steps", "dcgan", "many"), "steps = {"),
    "invalid YAML": ([], "batch_size: [1, 2\nsteps: {", "invalid YAML"),
    "unknown top key": ([], _set("ckpt_evry", 5), "unknown key ckpt_evry (did you mean ckpt_every?)"),
    "negative block value": ([], _set("qualitative", "n_images", -1), "qualitative.n_images = -1: must be an integer >= 1"),
    "unknown block key": ([], _set("quantitative", "featur", "pixels"), "unknown key quantitative.featur (did you mean feature?)"),
    "bad choice": ([], _set("gpu", "amp", "fp8"), "gpu.amp = 'fp8': must be one of bf16, fp16, null"),
    "bad feature": ([], _set("quantitative", "feature", "vgg"), "quantitative.feature = 'vgg': must be one of classifier"),
    "empty model list": ([], _set("models", []), "models must not be empty"),
    "ddm every > steps": ([], _set("ddm_study", "every", 1000), "ddm_study.every (1000) exceeds ddm_study.steps"),
    "zero ratio": ([], _set("experiments", "grid", "d_ratios", [0.0]), "experiments.grid.d_ratios = [0.0]: must be a list"),
    "nested unknown": ([], _set("dissection", "segmenter", "widht", 4), "unknown key dissection.segmenter.widht"),
    "bool as int": ([], _set("log_every", True), "log_every = True: must be an integer"),
    "not a mapping": ([], "- 1\n- 2\n", "a profile must be a mapping"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    argv, profile, expect = CASES[case]
    args = list(TRAIN) + list(argv)
    if profile is not None:
        path = _profile(tmp_path, text=profile) if isinstance(profile, str) else _profile(tmp_path, profile)
        args += ["--profile", path]
    if "--model" in argv:  # the case replaces the model
        args = ["train", "--dry-run"] + list(argv)
    if "--steps" in argv:  # --dry-run would replace the steps
        args.remove("--dry-run")
    rc = cli.main(args)
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and expect in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.safetensors"))


def test_report_rejects_a_bad_profile_before_running(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path / "reports")
    path = _profile(tmp_path, _set("qualitative", "n_imagez", 3))
    rc = cli.main(["report", "--profile", path])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "qualitative.n_imagez (did you mean n_images?)" in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()  # nothing ran


@pytest.mark.parametrize("name", config.PROFILES)
def test_shipped_profiles_validate(name):
    params, run = config.profile_params(name), config.resolve(name)
    assert run.profile == name and run.models and set(run.models) <= set(run.steps)
    assert settings.as_dict(run)["qualitative"].keys() == params["qualitative"].keys()


def test_overrides_and_defaults():
    run = config.resolve("smoke", {"qualitative.n_images": 4})
    assert run.qualitative.n_images == 4 and config.resolve("smoke").qualitative.n_images == 2
    with pytest.raises(ConfigError, match=r"with --set qualitative.n_images=0: qualitative.n_images = 0"):
        config.resolve("smoke", {"qualitative.n_images": 0})
    # the studies' default dicts are the typed blocks' defaults (one source)
    from ganreport.studies.ddm.common import STUDY_DEFAULTS
    from ganreport.studies.modnet.common import MODNET_DEFAULTS

    assert MODNET_DEFAULTS == settings.defaults(settings.ModNetStudy)
    assert STUDY_DEFAULTS["ais"]["sigmas"] == [0.02, 0.05, 0.1, 0.2]
    assert settings.validate({}, "empty").batch_size == 64  # every key has a default
