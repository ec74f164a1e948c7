"""ModNet λ trade-off (thesis eq. 2.7, §2.2): fine-tune the trained model with each L1 weight λ
(:func:`train_lambda_finetunes`, notebook 01) and score class change against closeness
(:func:`lambda_tradeoff`, notebook 03); the table and its figure."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from ... import config, data as data_mod, io, train
from ...errors import CheckpointError, DataError
from ...models.modnet import ModNetGenerator, random_targets
from ...train.checkpoints import _read_model_checkpoint, _strip
from ...settings import Profile
from .common import MODEL, _modify, _probs, change_stats, frozen_classifier, out_dir, settings, transfer_classifier


@torch.no_grad()
def _score(G: ModNetGenerator, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, clfs: dict[str, Any],
           ssim_min: float) -> dict[str, float]:
    mod = _modify(G, x, t)
    st = change_stats(x, mod)
    out = {k: float(v.mean()) for k, v in st.items()}
    close = st["ssim"] >= ssim_min
    for name, ext in clfs.items():
        hit = _probs(ext.model, mod).argmax(1) == t
        out[f"fool_rate_{name}"] = float(hit.float().mean())
        out[f"fool_close_rate_{name}"] = float((hit & close).float().mean())
    return out


def _base(prof: Profile, lambdas: list[float] | None, steps: int | None):
    """Settings, λ values, fine-tune steps, the trained ModNet's checkpoint (tensors, meta) and the stamp
    that ties a fine-tune to that checkpoint."""
    s = settings(prof)
    lambdas = [float(v) for v in (lambdas if lambdas is not None else s["lambdas"])]
    steps = int(steps or s["tradeoff_steps"])
    base_dir = config.model_dir(prof.profile, MODEL, s["dataset"])
    ckpt = train.latest_checkpoint(base_dir)
    if ckpt is None:
        raise CheckpointError(f"no checkpoint in {base_dir / 'checkpoints'}; train the model first (notebook 01)")
    tensors, meta = _read_model_checkpoint(ckpt)
    stamp = {"base_checkpoint_sha256": io.sha256(ckpt), "steps": steps}  # redo when the base model changes
    return s, lambdas, steps, tensors, meta, stamp


def _folder(profile: str, lam: float):
    return out_dir(profile) / "tradeoff" / f"lambda_{lam:g}"


def train_lambda_finetunes(prof: Profile, lambdas: list[float] | None = None, steps: int | None = None,
                           progress: bool = True) -> pd.DataFrame:
    """Fine-tune the trained ModNet once per L1 weight λ (thesis eq. 2.7, §2.2; notebook 01).

    Each fine-tune runs ``tradeoff_steps`` steps of ``L_G + L_label + λ·L1`` from the trained model's
    weights (same trainer, seed and data, fresh optimisers) in ``modnet/tradeoff/lambda_<λ>/``; a
    fine-tune of the same base checkpoint that finished is reused, one from another base is redone.
    Also caches the transfer classifier that :func:`lambda_tradeoff` and ``fooling`` score with.
    Returns one row per λ: ``lambda, steps, train_s, model_dir``.
    """
    s, lambdas, steps, tensors, meta, stamp = _base(prof, lambdas, steps)
    transfer_classifier(prof, meta, train_if_missing=True)
    train_data = data_mod.load(meta["dataset"], "train", seed=int(meta.get("data_seed") or 0))
    base = {k: v for k, v in meta["params"].items() if k != "l1_lambda"}
    want = json.loads(json.dumps(stamp))
    rows = []
    for lam in tqdm(lambdas, desc="modnet λ fine-tunes", disable=not progress, ncols=100):
        folder = _folder(prof.profile, lam)
        marker, done = folder / "base.json", folder / "finetune.json"
        if (blob := io.read_keyed(done, stamp, "stamp")) is not None:
            rows.append({"lambda": lam, "steps": steps, "train_s": blob["train_s"], "model_dir": str(folder)})
            continue
        stale = not marker.is_file() or json.loads(marker.read_text()) != want
        if folder.exists() and stale:
            shutil.rmtree(folder)  # fine-tuned from another base model (or interrupted before the marker): redo
        cfg = train.TrainConfig(steps=meta["step"] + steps, batch_size=s["batch_size"], ckpt_every=meta["step"] + steps,
                                log_every=max(1, steps // 4), grid_every=meta["step"] + steps, seed=s["seed"],
                                device=s["device"])
        kw = {**{k: (tuple(v) if k == "betas" else v) for k, v in base.items()}, "l1_lambda": lam}
        t0 = time.perf_counter()
        tr = train.Trainer(MODEL, train_data, folder, cfg, **kw)
        if tr.step == 0:  # start from the trained model's weights (G, D); fresh optimisers
            tr.G.load_state_dict(_strip(tensors, "G"))
            tr.D.load_state_dict(_strip(tensors, "D"))
            if tr.G_ema is not None:
                tr.G_ema.load_state_dict(_strip(tensors, "G_ema" if meta.get("ema") else "G"))
            tr.step = int(meta["step"])
            io.write_json(marker, stamp)
        tr.fit(progress=False)
        train_s = round(time.perf_counter() - t0, 2)
        io.write_keyed(done, stamp, {"train_s": train_s}, "stamp")
        rows.append({"lambda": lam, "steps": steps, "train_s": train_s, "model_dir": str(folder)})
    return pd.DataFrame(rows)


def lambda_tradeoff(prof: Profile, lambdas: list[float] | None = None, steps: int | None = None,
                    progress: bool = True) -> pd.DataFrame:
    """The L1 weight λ trades class change against closeness (thesis eq. 2.7, §2.2).

    Each fine-tune of :func:`train_lambda_finetunes` (notebook 01) is scored on ``tradeoff_n`` test
    images with random targets: fooling rate (frozen, transfer), fooled-and-close rate, L1, L2, SSIM.
    Nothing is trained here: a fine-tune that is missing or was made from another base checkpoint is
    a :class:`DataError` that names notebook 01. Writes ``tradeoff.csv``; returns one row per λ
    (``train_s``: the fine-tune's wall time, ``score_s``: this scoring's).
    """
    s, lambdas, steps, _, meta, stamp = _base(prof, lambdas, steps)
    for lam in lambdas:
        done = _folder(prof.profile, lam) / "finetune.json"
        if io.read_keyed(done, stamp, "stamp") is None:
            raise DataError(f"no finished λ={lam:g} fine-tune of the current ModNet of profile {prof.profile!r} in "
                            f"{done.parent}; run notebook 01 (modnet.train_lambda_finetunes) first")
    data_seed = int(meta.get("data_seed") or 0)
    test = data_mod.load(meta["dataset"], "test", seed=data_seed)
    clfs = {"frozen": frozen_classifier(meta), "transfer": transfer_classifier(prof, meta)}
    g = torch.Generator().manual_seed(s["seed"] + 17)
    n = min(int(s["tradeoff_n"]), len(test))
    idx = torch.randperm(len(test), generator=g)[:n]
    x, y = test.images[idx], test.labels[idx]
    t = random_targets(y, int(meta["params"]["num_classes"]), g)
    rows = []
    for lam in tqdm(lambdas, desc="modnet λ trade-off", disable=not progress, ncols=100):
        folder = _folder(prof.profile, lam)
        t0 = time.perf_counter()
        G, _ = train.load_generator(folder)
        rows.append({"lambda": lam, "steps": steps, **_score(G, x, y, t, clfs, float(s["ssim_min"])),
                     "train_s": json.loads((folder / "finetune.json").read_text())["train_s"],
                     "score_s": round(time.perf_counter() - t0, 2)})
    df = pd.DataFrame(rows)
    io.write_text(out_dir(prof.profile) / "tradeoff.csv", df.to_csv(index=False))
    return df


def plot_tradeoff(df: pd.DataFrame):
    """λ trade-off: fooling rates and closeness against λ (log scale), and fooling rate against L2."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    lam = df["lambda"].to_numpy()
    a.plot(lam, df["fool_rate_frozen"], "o-", label="fooling rate, frozen classifier")
    a.plot(lam, df["fool_rate_transfer"], "s--", label="fooling rate, transfer classifier")
    a.plot(lam, df["fool_close_rate_frozen"], "^:", label="fooled & close (frozen)")
    a.plot(lam, df["ssim"], "d-.", color="0.4", label="mean SSIM(x, x')")
    a.set_xscale("log")
    b.plot(df["l2"], df["fool_rate_frozen"], "o-", label="frozen classifier")
    b.plot(df["l2"], df["fool_rate_transfer"], "s--", label="transfer classifier")
    for _, r in df.iterrows():
        b.annotate(f"λ={r['lambda']:g}", (r["l2"], r["fool_rate_frozen"]), fontsize=7, xytext=(3, 3),
                   textcoords="offset points")
    for ax, xlabel, ylabel, title in (
            (a, "λ (weight of the L1 term)", "share / SSIM", "class change vs closeness as λ grows"),
            (b, "mean L2 change ‖x' − x‖₂ ([0,1] intensity units)", "fooling rate",
             "fooling rate vs size of the change")):
        ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"ModNet λ trade-off (fine-tuned {int(df['steps'].iloc[0])} steps per λ)", fontsize=10)
    fig.tight_layout()
    return fig
