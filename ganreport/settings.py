"""Typed, validated settings of a profile: one class per block, one checker, one-line errors.

A profile (``profiles/<name>.yaml`` or any YAML file) is a mapping of blocks: the training keys at
the top level (:class:`Profile`), ``gpu``, ``quantitative``, ``qualitative``, ``dissection`` and one
block per study (``modnet``, ``ddm_study``, ``experiments``). Each block is a frozen dataclass whose
fields declare their type and range; :func:`validate` checks a mapping against them *before
anything is built* and raises one :class:`~ganreport.errors.ConfigError` line that names the file,
the key, the value and what is allowed, e.g.::

    profiles/my.yaml: qualitative.n_images = -1: must be an integer >= 1
    profiles/my.yaml: unknown key ckpt_evry (did you mean ckpt_every?); valid: batch_size, ...

Unknown keys get a "did you mean" from :func:`difflib.get_close_matches`; invalid YAML is reported
with its line (:func:`read_yaml`). ``--set``-style overrides (``key=value`` with dotted keys, e.g.
``qualitative.n_images=4``) are applied by :func:`apply_overrides` and checked the same way.

Why not pydantic: the checks needed here (types of nested plain-YAML values, ranges, choices, "did
you mean") fit in one small function over dataclass annotations, and the error line is ours to
word. torch-fidelity's one defaults dict and one resolver is the model (:func:`ganreport.config.resolve`
is the one reader and calls :func:`validate`). Block defaults here are the single source of the
study modules' default dicts (:func:`defaults`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


def _f(default: Any = dataclasses.MISSING, *, lo: float | None = None, hi: float | None = None,
       lo_open: bool = False, hi_open: bool = False, choices: tuple | None = None, nonempty: bool = False,
       factory: Any = None) -> Any:
    """A dataclass field with its allowed range (``lo``/``hi``, open or closed) or ``choices``; for a
    list or dict the range applies to every element (every value)."""
    meta = dict(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, choices=choices, nonempty=nonempty)
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _pos(default: int) -> Any:
    return _f(default, lo=1)


# ----------------------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class Gpu:
    """``gpu``: options applied only when training runs on CUDA."""

    amp: str | None = _f(None, choices=("bf16", "fp16", None))
    compile: bool = False
    channels_last: bool = False


@dataclass(frozen=True)
class Quantitative:
    """``quantitative``: notebook 02's feature extractor and validation sizes."""

    feature: str = _f("classifier", choices=("classifier", "pixels", "inception"))
    classifier_kw: dict[str, Any] = _f(factory=dict)
    inception_weights: str | None = None
    validation_n: int = _f(256, lo=2)
    ladder_levels: int = _pos(3)
    modes_classes: list[int] = _f(lo=1, nonempty=True, factory=lambda: [1, 10])
    modes_distinct: list[int] = _f(lo=1, nonempty=True, factory=lambda: [10, 256])


@dataclass(frozen=True)
class Qualitative:
    """``qualitative``: notebook 03's attribution, measure and latent-space sizes."""

    n_images: int = _pos(2)
    smoothgrad_samples: int = _pos(8)
    smoothgrad_sigma: float = _f(0.3, lo=0, lo_open=True)
    ig_steps: int = _pos(16)
    lime_samples: int = _pos(40)
    lime_segments: int = _f(16, lo=2)
    n_measure: int = _pos(6)
    deletion_steps: int = _pos(10)
    n_random: int = _pos(2)
    interp_steps: int = _f(7, lo=2)
    sweep_dims: int = _pos(3)
    sweep_values: int = _f(5, lo=2)
    n_attribute: int = _f(64, lo=2)
    ppl_samples: int = _f(32, lo=2)
    n_queries: int = _pos(3)
    n_neighbours: int = _pos(3)


@dataclass(frozen=True)
class Segmenter:
    """``dissection.segmenter``: the concept segmenter trained on ``shapes``."""

    width: int = _pos(8)
    n_train: int = _pos(800)
    epochs: int = _pos(3)
    batch_size: int = _pos(16)
    n_test: int = _pos(300)


@dataclass(frozen=True)
class Dissection:
    """``dissection``: the models trained on ``shapes`` (notebook 01) and dissected (notebook 03)."""

    dataset: str = "shapes"
    models: list[str] = _f(nonempty=True, factory=lambda: ["dcgan"])
    steps: int = _pos(20)
    n_samples: int = _pos(64)
    ks: list[int] = _f(lo=1, nonempty=True, factory=lambda: [1, 4])
    n_effect: int = _pos(32)
    n_random: int = _pos(1)
    alpha_steps: int = _pos(5)
    n_context: int = _pos(64)
    n_attr: int = _pos(32)
    segmenter: Segmenter = _f(factory=Segmenter)
    model_kwargs: dict[str, dict[str, Any]] = _f(factory=dict)


@dataclass(frozen=True)
class ModNetStudy:
    """``modnet``: the ModNet experiments (seed 004 ch. 2; :mod:`ganreport.studies.modnet`)."""

    n_per_pair: int = _pos(20)           # fooling: test images per source class, each modified to every class
    ssim_min: float = _f(0.5, lo=-1, hi=1)  # "close": SSIM(x, x') >= ssim_min
    transfer_classifier: dict[str, Any] = _f(factory=lambda: {"seed": 1, "width": 8, "epochs": 5})
    lambdas: list[float] = _f(lo=0, nonempty=True, factory=lambda: [1.0, 3.0, 10.0, 30.0])  # λ trade-off: fine-tune with each λ ...
    tradeoff_steps: int = _pos(25)       # ... for this many steps ...
    tradeoff_n: int = _pos(500)          # ... and evaluate on this many test images (random targets)
    aug_sizes: list[int] = _f(lo=1, nonempty=True, factory=lambda: [10, 100, 1000])  # augmentation: real training images
    aug_seeds: list[int] = _f(lo=0, nonempty=True, factory=lambda: [0, 1, 2])
    aug_steps: int = _pos(250)           # LeNet-5 training steps (the same for every condition)
    aug_batch: int = _pos(32)
    aug_lr: float = _f(3e-3, lo=0, lo_open=True)
    aug_max_generated: int = _f(2000, lo=0)  # cap on generated images per run
    n_memorization: int = _pos(500)      # memorisation: modified train / test images checked
    n_neighbours: int = _pos(4)          # neighbours shown per row in the figure


@dataclass(frozen=True)
class Parzen:
    n_test: int = _pos(500)
    pca_variance: float = _f(0.95, lo=0, hi=1, lo_open=True)


@dataclass(frozen=True)
class Ais:
    n_images: int = _pos(4)
    sigmas: list[float] = _f(lo=0, lo_open=True, nonempty=True, factory=lambda: [0.02, 0.05, 0.1, 0.2])
    n_chains: int = _pos(2)
    n_steps: int = _pos(60)
    n_leapfrog: int = _pos(4)
    step_size: float = _f(0.05, lo=0, lo_open=True)


@dataclass(frozen=True)
class Hypercolumns:
    layers: list[str] = _f(nonempty=True, factory=lambda: ["block1", "block2", "prelogits", "logits"])
    grid: int = _pos(1)


@dataclass(frozen=True)
class MissingModes:
    n_list: list[int] = _f(lo=1, nonempty=True, factory=lambda: [10, 20, 100, 1000, 2000])
    repeats: int = _pos(5)
    set_size: int = _pos(2000)
    kid_subsets: int = _pos(10)
    kid_subset_size: int = _f(500, lo=2)
    tol: float = _f(0.01, lo=0)


@dataclass(frozen=True)
class Corruptions:
    n: int = _f(500, lo=2)
    gaussian: list[float] = _f(lo=0, factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.3, 0.5])
    uniform: list[float] = _f(lo=0, factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.3, 0.5])
    blur: list[float] = _f(lo=0, factory=lambda: [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])


@dataclass(frozen=True)
class DDMStudy:
    """``ddm_study``: the DDM study of the ModNet thesis ch. 3 (:mod:`ganreport.studies.ddm`)."""

    dataset: str = "mnist"
    seed: int = _f(0, lo=0)
    models: list[str] = _f(nonempty=True, factory=lambda: ["dcgan", "dcgan_small", "dcgan_weak"])
    model_kwargs: dict[str, Any] = _f(factory=lambda: dict(g_width=8, d_width=8, z_dim=32, ema=0.0))
    steps: int = _pos(400)
    every: int = _pos(100)
    batch_size: int = _pos(32)
    n_eval: int = _f(300, lo=2)
    n_test: int = _f(2500, lo=2)
    n_val: int = _f(500, lo=2)
    parzen: Parzen = _f(factory=Parzen)
    ais: Ais = _f(factory=Ais)
    hypercolumns: Hypercolumns = _f(factory=Hypercolumns)
    classifiers: list[dict[str, Any]] = _f(factory=lambda: [
        dict(arch="smallcnn", seed=1, width=16, prelogit_dim=128, epochs=2, n_train=None),
        dict(arch="lenet", seed=2, width=16, prelogit_dim=128, epochs=3, n_train=None)])
    missing_modes: MissingModes = _f(factory=MissingModes)
    corruptions: Corruptions = _f(factory=Corruptions)
    n_boot: int = _f(200, lo=0)


@dataclass(frozen=True)
class Tracking:
    """``experiments.tracking``: metrics recorded during training (seed 001)."""

    enabled: bool = False
    models: list[str] = _f(factory=lambda: ["wgan_gp"])
    points: int = _pos(10)
    every: int | None = _f(None, lo=1)
    n: int = _f(256, lo=2)
    ref_n: int = _f(0, lo=0)
    metrics: list[str] = _f(choices=("fid", "kid", "is", "ddm", "critic", "proxies"),
                            factory=lambda: ["fid", "kid", "is", "ddm", "critic", "proxies"])
    kid_subsets: int = _pos(10)
    seed: int = _f(0, lo=0)
    cpu_threads: int = _pos(1)


@dataclass(frozen=True)
class Grid:
    """``experiments.grid``: the generator-width x critic-size grid (seed 001)."""

    enabled: bool = False
    model: str = "wgan_gp"
    g_widths: list[int] = _f(lo=1, nonempty=True, factory=lambda: [8])
    d_ratios: list[float] = _f(lo=0, lo_open=True, nonempty=True, factory=lambda: [0.5, 1.0])
    z_dim: int = _pos(32)
    steps: int = _pos(100)
    batch_size: int = _pos(32)
    n_critic: int = _pos(5)
    lr: float | None = _f(None, lo=0, lo_open=True)
    n_eval: int = _f(256, lo=2)
    track_points: int = _f(0, lo=0)
    seed: int = _f(0, lo=0)
    cpu_threads: int = _pos(1)


@dataclass(frozen=True)
class Lime:
    """``experiments.lime``: LIME on the critics of the grid (seed 001)."""

    enabled: bool = False
    n_images: int = _pos(2)
    samples: int = _pos(64)
    segments: int = _f(16, lo=2)
    top: float = _f(0.2, lo=0, hi=1, lo_open=True)
    seed: int = _f(0, lo=0)
    cpu_threads: int = _pos(1)


@dataclass(frozen=True)
class Experiments:
    """``experiments``: the critic studies of seed 001 (:mod:`ganreport.studies.critic`)."""

    tracking: Tracking = _f(factory=Tracking)
    grid: Grid = _f(factory=Grid)
    lime: Lime = _f(factory=Lime)


@dataclass(frozen=True)
class Profile:
    """A resolved profile: the top-level keys (what notebook 01 and ``python -m ganreport train``
    train) and the blocks above. Made once by :func:`ganreport.config.resolve` where a notebook or
    the CLI starts, then passed down."""

    profile: str = "custom"  # the name: runs/<profile>/ holds its results
    dataset: str = "mnist"
    models: list[str] = _f(nonempty=True, factory=lambda: ["dcgan", "stylegan", "wgan_gp", "modnet"])
    seed: int = _f(0, lo=0)
    data_seed: int = _f(0, lo=0)
    batch_size: int = _pos(64)
    steps: dict[str, int] = _f(lo=1, factory=dict)  # per model; a model without an entry trains 100 steps
    model_kwargs: dict[str, dict[str, Any]] = _f(factory=dict)
    ckpt_every: int = _pos(250)
    log_every: int = _pos(25)
    grid_every: int = _pos(250)
    n_samples: int = _f(256, lo=2)
    device: str = "auto"
    gpu: Gpu = _f(factory=Gpu)
    quantitative: Quantitative = _f(factory=Quantitative)
    qualitative: Qualitative = _f(factory=Qualitative)
    dissection: Dissection = _f(factory=Dissection)
    modnet: ModNetStudy = _f(factory=ModNetStudy)
    ddm_study: DDMStudy = _f(factory=DDMStudy)
    experiments: Experiments = _f(factory=Experiments)


# ----------------------------------------------------------------------------------------- checks
def _is_block(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    if origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null",
            Any: "any value"}.get(tp, getattr(tp, "__name__", str(tp)))


def range_text(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> str:
    """``">= 1"``, ``"> 0 and < 1"``...: an allowed range as the error lines word it ("" when unbounded)."""
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def did_you_mean(key: str, valid: Any) -> str:
    """``" (did you mean x?)"`` for the closest of ``valid`` to ``key``, or ``""``."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _range_text(meta: dict) -> str:
    if meta.get("choices"):
        return "one of " + ", ".join("null" if c is None else str(c) for c in meta["choices"])
    return range_text(meta.get("lo"), meta.get("hi"), bool(meta.get("lo_open")), bool(meta.get("hi_open")))


def _type_ok(v: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(v, a) for a in typing.get_args(tp))
    if tp is type(None):
        return v is None
    if tp is bool:
        return isinstance(v, bool)
    if tp is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if tp is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if tp is str:
        return isinstance(v, str)
    if origin is list:
        return isinstance(v, (list, tuple)) and all(_type_ok(x, typing.get_args(tp)[0]) for x in v)
    if origin is dict:
        kt, vt = typing.get_args(tp)
        return isinstance(v, dict) and all(_type_ok(k, kt) and _type_ok(x, vt) for k, x in v.items())
    return isinstance(v, tp)


def _in_range(v: Any, meta: dict) -> bool:
    if isinstance(v, (list, tuple)):
        return all(_in_range(x, meta) for x in v)
    if isinstance(v, dict):
        return all(_in_range(x, meta) for x in v.values())
    if meta.get("choices") is not None:
        return v in meta["choices"]
    if v is None or isinstance(v, (bool, str)):
        return True
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (v <= lo if meta["lo_open"] else v < lo):
        return False
    if hi is not None and (v >= hi if meta["hi_open"] else v > hi):
        return False
    return True


def _unknown(key: str, where: str, valid: list[str], source: str) -> ConfigError:
    name = f"{where}.{key}" if where else key
    return ConfigError(f"{source}: unknown key {name}{did_you_mean(key, valid)}; valid: {', '.join(valid)}")


def _build(cls: type, given: Any, where: str, source: str) -> Any:
    """Check ``given`` (a mapping) against block ``cls`` and return the block instance."""
    if not isinstance(given, dict):
        raise ConfigError(f"{source}: {where or 'the profile'} must be a mapping of keys, got {given!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k in given:
        if k not in fields:
            raise _unknown(str(k), where, list(fields), source)
    kw = {}
    for name, f in fields.items():
        if name not in given:
            continue
        v, tp, path = given[name], hints[name], f"{where}.{name}" if where else name
        if _is_block(tp):
            kw[name] = _build(tp, v if v is not None else {}, path, source)
            continue
        meta = dict(f.metadata)
        if not _type_ok(v, tp):
            rng = _range_text(meta)
            raise ConfigError(f"{source}: {path} = {v!r}: must be {_type_name(tp)}" + (f" ({rng})" if rng else ""))
        if not _in_range(v, meta):
            raise ConfigError(f"{source}: {path} = {v!r}: must be {_type_name(tp)} {_range_text(meta)}"
                              if not meta.get("choices") else f"{source}: {path} = {v!r}: must be {_range_text(meta)}")
        if meta.get("nonempty") and len(v) == 0:
            raise ConfigError(f"{source}: {path} must not be empty")
        kw[name] = v
    return cls(**kw)


def validate(params: dict[str, Any], source: str = "profile", extra: Any = ()) -> Profile:
    """Check a profile mapping; return its typed :class:`Profile` (blocks as nested dataclasses).

    Raises :class:`ConfigError` with one line naming ``source``, the key, the value and what is
    allowed. ``extra``: further top-level keys that are known elsewhere (the parameters a custom
    notebook declares), passed through unchecked. Cross-key check: ``ddm_study.every <= steps``.
    """
    known = {f.name for f in dataclasses.fields(Profile)}
    extra = set(extra) - known  # a notebook's own parameters; the blocks declared here are always checked
    run = _build(Profile, {k: v for k, v in params.items() if k not in extra}, "", source)
    if run.ddm_study.every > run.ddm_study.steps:
        raise ConfigError(f"{source}: ddm_study.every ({run.ddm_study.every}) exceeds ddm_study.steps "
                          f"({run.ddm_study.steps}): no evaluation would run")
    return run


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a syntax error becomes one line with the file and line number."""
    path = Path(path)
    try:
        with open(path) as fh:
            params = yaml.safe_load(fh) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: a profile must be a mapping of keys, got {type(params).__name__}")
    return params


def apply_overrides(params: dict[str, Any], overrides: dict[str, Any], flag: str = "--set") -> dict[str, Any]:
    """``params`` with ``{"a.b": v}`` overrides applied (a copy); unknown keys are caught by :func:`validate`."""
    import copy

    out = copy.deepcopy(params)
    for key, v in overrides.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"{flag} {key}={v!r}: {p} is not a block")
            node = nxt
        node[parts[-1]] = v
    return out


def defaults(block: type) -> dict[str, Any]:
    """The defaults of a block as a plain dict (nested blocks as dicts): the study modules' defaults."""
    return dataclasses.asdict(block())


def as_dict(obj: Any) -> dict[str, Any]:
    """A block (or :class:`Profile`) as the plain nested dict a profile file would hold."""
    return dataclasses.asdict(obj)
