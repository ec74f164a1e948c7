"""ModNet λ trade-off (thesis eq. 2.7, §2.2): fine-tune the trained model with each L1 weight λ and score
class change against closeness; the table and its figure."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from ... import config, data as data_mod, io, train
from ...errors import CheckpointError
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


def lambda_tradeoff(prof: Profile, lambdas: list[float] | None = None, steps: int | None = None,
                    progress: bool = True) -> pd.DataFrame:
    """The L1 weight λ trades class change against closeness (thesis eq. 2.7, §2.2).

    For each λ the trained ModNet is fine-tuned for ``tradeoff_steps`` steps with
    ``L_G + L_label + λ·L1`` (same trainer, seed and data; own folder
    ``modnet/tradeoff/lambda_<λ>/``, resumed when already done), then scored on ``tradeoff_n`` test
    images with random targets: fooling rate (frozen, transfer), fooled-and-close rate, L1, L2,
    SSIM. Writes ``tradeoff.csv``; returns one row per λ.
    """
    profile = prof.profile
    s = settings(prof)
    lambdas = [float(v) for v in (lambdas if lambdas is not None else s["lambdas"])]
    steps = int(steps or s["tradeoff_steps"])
    base_dir = config.model_dir(profile, MODEL, s["dataset"])
    ckpt = train.latest_checkpoint(base_dir)
    if ckpt is None:
        raise CheckpointError(f"no checkpoint in {base_dir / 'checkpoints'}; train the model first (notebook 01)")
    tensors, meta = _read_model_checkpoint(ckpt)
    data_seed = int(meta.get("data_seed") or 0)
    train_data = data_mod.load(meta["dataset"], "train", seed=data_seed)
    test = data_mod.load(meta["dataset"], "test", seed=data_seed)
    clfs = {"frozen": frozen_classifier(meta), "transfer": transfer_classifier(prof, meta)}
    g = torch.Generator().manual_seed(s["seed"] + 17)
    n = min(int(s["tradeoff_n"]), len(test))
    idx = torch.randperm(len(test), generator=g)[:n]
    x, y = test.images[idx], test.labels[idx]
    t = random_targets(y, int(meta["params"]["num_classes"]), g)
    base = {k: v for k, v in meta["params"].items() if k != "l1_lambda"}
    stamp = {"base_checkpoint_sha256": io.sha256(ckpt), "steps": steps}  # redo when the base model changes
    rows = []
    for lam in tqdm(lambdas, desc="modnet λ trade-off", disable=not progress, ncols=100):
        folder = out_dir(profile) / "tradeoff" / f"lambda_{lam:g}"
        marker = folder / "base.json"
        stale = not marker.is_file() or json.loads(marker.read_text()) != json.loads(json.dumps(stamp))
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
        G = tr.generator.eval()
        rows.append({"lambda": lam, "steps": steps, **_score(G, x, y, t, clfs, float(s["ssim_min"])),
                     "seconds": round(time.perf_counter() - t0, 2)})
    df = pd.DataFrame(rows)
    io.write_text(out_dir(profile) / "tradeoff.csv", df.to_csv(index=False))
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
    a.set_xlabel("λ (weight of the L1 term)")
    a.set_ylabel("share / SSIM")
    a.set_ylim(-0.02, 1.02)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    a.set_title("class change vs closeness as λ grows", fontsize=9)
    b.plot(df["l2"], df["fool_rate_frozen"], "o-", label="frozen classifier")
    b.plot(df["l2"], df["fool_rate_transfer"], "s--", label="transfer classifier")
    for _, r in df.iterrows():
        b.annotate(f"λ={r['lambda']:g}", (r["l2"], r["fool_rate_frozen"]), fontsize=7, xytext=(3, 3),
                   textcoords="offset points")
    b.set_xlabel("mean L2 change ‖x' − x‖₂ ([0,1] intensity units)")
    b.set_ylabel("fooling rate")
    b.set_ylim(-0.02, 1.02)
    b.grid(alpha=0.3)
    b.legend(fontsize=7)
    b.set_title("fooling rate vs size of the change", fontsize=9)
    fig.suptitle(f"ModNet λ trade-off (fine-tuned {int(df['steps'].iloc[0])} steps per λ)", fontsize=10)
    fig.tight_layout()
    return fig
