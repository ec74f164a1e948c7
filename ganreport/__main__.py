"""``python -m ganreport {train,report,profiles}``: a thin CLI over the package.

Several processes: ``torchrun --nproc_per_node N -m ganreport train ...`` (see the README).

Errors meant for the user (:class:`GanreportError`) are printed as one message, not a traceback.
"""

from __future__ import annotations

import argparse
import sys

from .errors import GanreportError


def _cmd_train(a: argparse.Namespace) -> None:
    from . import config, train

    kw, data_kw = _pairs(a.set, "--set"), _pairs(a.data, "--data")
    prof = config.resolve(a.profile)  # checked once, before anything is built; passed down
    res = train.train_model(a.model, a.dataset, prof, out_dir=a.out, seed=a.seed,
                            steps=(2 if a.dry_run else a.steps), batch_size=a.batch_size, amp=a.amp,
                            compile=a.compile, channels_last=a.channels_last, data_kw=data_kw, **kw)
    from .distributed import env_rank

    if env_rank() != 0:  # under torchrun only rank 0 reports
        return
    print(f"{a.model}: {res.steps} steps ({res.steps - res.resumed_from} this run) in {res.seconds:.1f} s "
          f"({res.steps_per_s:.1f} steps/s); checkpoint {res.checkpoint}")


def _pairs(items: list[str] | None, flag: str) -> dict:
    """``["k=v", ...]`` -> ``{k: literal(v)}``; a malformed item is a clear error."""
    out = {}
    for item in items or []:
        k, eq, v = item.partition("=")
        if not eq or not k.strip():
            raise GanreportError(f"{flag} takes KEY=VALUE, got {item!r}")
        out[k.strip()] = _literal(v)
    return out


def _literal(v: str):
    import ast

    try:
        return ast.literal_eval(v)
    except (ValueError, SyntaxError):
        return v


def _cmd_report(a: argparse.Namespace) -> None:
    from . import report

    report.build_report(a.profile, skip_run=a.skip_run)


def _cmd_profiles(a: argparse.Namespace) -> None:
    from . import config

    for name in config.PROFILES:
        print(name, config.profile_params(name))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ganreport", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one architecture")
    t.add_argument("--model", required=True,
                   help="architecture from the model registry, e.g. dcgan, stylegan, wgan_gp, modnet")
    t.add_argument("--dataset", default="mnist",
                   help="dataset from the registry: mnist (default), digits, shapes, folder (needs --data path=DIR)")
    t.add_argument("--profile", default="smoke", help="smoke (default), quick, full or a YAML file: step counts, sizes")
    t.add_argument("--seed", type=int, default=0, help="seed of weights, batches and latents (default 0)")
    t.add_argument("--steps", type=int, help="total steps (default: the profile's); a resumed run trains up to it")
    t.add_argument("--batch-size", type=int, help="global batch size (default: the profile's)")
    t.add_argument("--out", help="output folder (default runs/<profile>/<dataset>/<model>)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="model parameter override, e.g. g_width=64")
    t.add_argument("--data", action="append", metavar="KEY=VALUE",
                   help="dataset option, e.g. path=my_images (folder), download=True (mnist), size=32")
    t.add_argument("--dry-run", action="store_true", help="two steps only (CI)")
    t.add_argument("--amp", choices=["bf16", "fp16"], help="mixed precision (default: the profile's gpu block on CUDA)")
    t.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the models")
    t.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="channels-last memory format")
    t.set_defaults(fn=_cmd_train)
    r = sub.add_parser("report", help="run the notebooks and build reports/report.{html,pdf}")
    r.add_argument("--profile", default="quick")
    r.add_argument("--skip-run", action="store_true", help="only merge already executed notebooks")
    r.set_defaults(fn=_cmd_report)
    pr = sub.add_parser("profiles", help="print the profiles")
    pr.set_defaults(fn=_cmd_profiles)
    a = p.parse_args(argv)
    try:
        a.fn(a)
    except GanreportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept, run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
