"""The whole DDM study for a profile: :func:`train_ddm_study` trains its embedding networks and DCGAN
variants (notebook 01); :func:`run_ddm_study` scores experiments 1-6 (notebook 02) and writes
``summary.json``; :func:`load_ddm_study` reads what it wrote (notebook 04); :func:`verdicts` gives
the sentence of each experiment.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ... import io
from ...errors import DataError
from ...settings import Profile
from .common import _clean, settings, single_thread, study_dir
from .context import prepare
from .corruption import corruption_slopes, corruptions, verdict_corruptions
from .embeddings import agreement, classifiers, verdict_agreement, verdict_networks
from .likelihood import ais, ais_spread, verdict_likelihoods
from .modes import missing_modes, saturation, verdict_missing_modes
from .training import final_values, over_training, train_variants, verdict_ranking


def verdicts(res: dict[str, Any]) -> dict[str, str]:
    """The verdict sentences of a :func:`run_ddm_study` / :func:`load_ddm_study` result."""
    ot = res["over_training"]
    st = res.get("settings") or {}
    tol = float((st.get("missing_modes") or {}).get("tol", 0.01))
    return {
        "ranking": verdict_ranking(ot),
        "likelihoods": verdict_likelihoods(ot, res.get("ais")),
        "embeddings": verdict_agreement(res["agreement"]["embeddings"], "embeddings"),
        "networks": verdict_networks(res["agreement"]["networks"], res["classifiers"].to_dict("records")),
        "missing_modes": verdict_missing_modes(res["missing_modes"], tol),
        "corruptions": verdict_corruptions(res["corruptions"]),
    }


@single_thread
def train_ddm_study(prof: Profile, progress: bool = True):
    """Train what the study needs (notebook 01): the embedding networks of ``ddm_study.classifiers``
    (and the main feature classifier, when not cached yet) and the DCGAN variants, whose DDM / FID /
    Parzen curves are recorded during training. Reuses whatever is finished on disk. Returns one row
    per trained network or model: ``kind, name, test_accuracy, seconds`` (the networks' own training
    time, this call's time for the variants)."""
    import pandas as pd

    st = settings(prof)
    study = prepare(prof, st, progress, train=True)
    nets = [dict(kind="embedding network", name=r["name"], test_accuracy=r["test_accuracy"],
                 seconds=r["train_seconds"]) for r in study.net_info]
    models = [dict(kind="DCGAN variant", name=r.model, test_accuracy=None, seconds=r.seconds)
              for r in train_variants(st, prof, study, progress).itertuples()]
    return pd.DataFrame(nets + models)


@single_thread
def run_ddm_study(prof: Profile, progress: bool = True) -> dict[str, Any]:
    """Score (or load from ``runs/<profile>/ddm_study/``) every experiment of the study for a profile.

    Nothing is trained: the networks and DCGAN variants come from :func:`train_ddm_study` (notebook
    01); a :class:`DataError` names notebook 01 when they are missing.

    Returns ``{"settings", "classifiers", "over_training", "ais", "agreement" ({"embeddings",
    "networks"}), "missing_modes", "corruptions", "verdicts", "seconds"}`` (DataFrames, dicts of
    DataFrames, a dict of sentences and of wall times); ``summary.json`` gets the verdicts,
    saturation points, AIS spread, slopes and timings.
    """
    t0 = time.perf_counter()
    st = settings(prof)
    study = prepare(prof, st, progress)
    secs: dict[str, float] = {"prepare": study.timings["prepare"], "nets": study.timings["nets"]}
    res: dict[str, Any] = {"settings": st}

    def timed(name: str, fn, *a, **kw):
        t = time.perf_counter()
        out = fn(*a, **kw)
        secs[name] = time.perf_counter() - t
        return out

    res["classifiers"] = timed("classifiers", classifiers, st, prof, study, progress)
    res["over_training"] = timed("over_training", over_training, st, prof, study, progress)
    res["ais"] = timed("ais", ais, st, prof, study, progress)
    res["agreement"] = timed("agreement", agreement, st, prof, res["over_training"], study, progress)
    res["missing_modes"] = timed("missing_modes", missing_modes, st, prof, study, progress)
    res["corruptions"] = timed("corruptions", corruptions, st, prof, study, progress)
    res["verdicts"] = verdicts(res)
    secs["total"] = time.perf_counter() - t0
    res["seconds"] = secs
    _write_summary(study.out, res)
    return res


def _write_summary(out: Path, res: dict[str, Any]) -> None:
    ot = res["over_training"]
    st = res["settings"]
    summary = dict(
        profile_settings=st, verdicts=res["verdicts"], seconds=res["seconds"],
        ddm_final={f: final_values(ot, "ddm", f) for f in sorted(set(ot.loc[ot["metric"] == "ddm", "feature"]))},
        fid_final=final_values(ot, "fid", "prelogits"),
        parzen_final={f: final_values(ot, "parzen_ll", f) for f in ("pixels", "pca95")},
        baseline={f"{r.metric}.{r.feature}": r.value for r in ot[ot["model"] == "real_train"].itertuples()},
        ais_spread=ais_spread(res["ais"]) if len(res["ais"]) else {},
        saturation=saturation(res["missing_modes"], float(st["missing_modes"]["tol"])),
        corruption_slopes=corruption_slopes(res["corruptions"]).to_dict("records"),
        classifiers=res["classifiers"].to_dict("records"),
        agreement={k: v.to_dict("records") for k, v in res["agreement"].items()},
    )
    io.write_json(out / "summary.json", _clean(summary))


def load_ddm_study(profile: str) -> dict[str, Any]:
    """The results :func:`run_ddm_study` wrote for ``profile`` (for notebook 04), without computing."""
    import pandas as pd

    out = study_dir(profile)
    if not (out / "summary.json").is_file():
        raise DataError(f"no DDM study results in {out}; run notebooks 01 (ddm.train_ddm_study) and 02 "
                        f"(ddm.run_ddm_study) for profile {profile!r} first")

    def rows(name: str):
        return pd.DataFrame(json.loads((out / name).read_text())["rows"])

    ag = json.loads((out / "agreement.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    res = {"settings": summary["profile_settings"], "classifiers": rows("classifiers.json"),
           "over_training": rows("over_training.json"), "ais": rows("ais.json"),
           "agreement": {k: pd.DataFrame(v) for k, v in ag.items()}, "missing_modes": rows("missing_modes.json"),
           "corruptions": rows("corruptions.json"), "seconds": summary["seconds"]}
    res["verdicts"] = summary["verdicts"]
    return res
