"""Stage 2 of the report: merge the executed notebooks behind a title page (profile, date, git commit,
hardware, torch version, run time per notebook) and a table-of-contents marker; widget outputs
become their static fallback and stderr streams are dropped.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import yaml

from .. import config
from ..errors import ReportError



WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


SKIP_TAGS = frozenset({"parameters", "injected-parameters", "papermill-error-cell-tag"})


TOC_MARKER = "<!-- ganreport:toc -->"


def merge_notebooks(notebooks: Sequence[tuple[str, nbformat.NotebookNode]],
                    front: Sequence[nbformat.NotebookNode] = ()) -> nbformat.NotebookNode:
    """One notebook: ``front`` cells, then every notebook's cells with their outputs made static.

    Parameters cells are left out; widget outputs keep only their static fallback; stderr
    streams are dropped; cell ids are made unique.
    """
    merged = nbformat.v4.new_notebook()
    if notebooks:
        meta = notebooks[0][1].metadata
        for key in ("kernelspec", "language_info"):
            if key in meta:
                merged.metadata[key] = copy.deepcopy(meta[key])
    merged.cells.extend(copy.deepcopy(list(front)))
    for stem, nb in notebooks:
        for k, cell in enumerate(nb.cells):
            if SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                continue
            cell = copy.deepcopy(cell)
            cell["id"] = re.sub(r"[^A-Za-z0-9_-]", "-", f"{stem}-{k}")[:64]
            if cell.cell_type == "code":
                cell.outputs = static_outputs(cell.get("outputs", []))
            merged.cells.append(cell)
    try:
        nbformat.validate(merged)
    except nbformat.ValidationError as e:
        raise ReportError(f"the merged notebook is not valid nbformat: {e.message}") from None
    return merged


def static_outputs(outputs: Sequence[dict]) -> list:
    """Outputs as a static page shows them: no widget views, no stderr.

    A widget's ``application/vnd.jupyter.widget-view+json`` needs a live kernel (blank offline);
    what else the output carries (``text/html``, an image) is kept. An output left with only
    the widget's ``text/plain`` repr is dropped, as are stderr streams (progress bars, warnings).
    """
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            continue
        data = out.get("data")
        if data is not None and WIDGET_MIME in data:
            rest = {k: v for k, v in data.items() if k != WIDGET_MIME}
            if set(rest) <= {"text/plain"}:
                continue
            out = copy.deepcopy(out)
            out["data"] = type(data)(rest)
        kept.append(out)
    return kept


def title_cells(profile: str, params: dict[str, Any], times: dict[str, float],
                profile_source: str | None = None) -> list[nbformat.NotebookNode]:
    """Title page (profile, date, commit, hardware, run times, parameters) and the TOC placeholder."""
    hw = hardware_info()
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    rows = [
        ("Profile", f"`{profile}`"),
        ("Date", when),
        ("Git commit", git_commit()),
        ("CPU", hw["cpu"]),
        ("RAM", hw["ram"]),
        ("GPU", hw["gpu"]),
        ("Software", f"Python {platform.python_version()}, torch {hw['torch']}"),
    ]
    lines = [f"# GAN report: sample quality and interpretability ({profile} profile)", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {_md_cell(v)} |" for k, v in rows]
    lines += ["", "**Run time per notebook**", "", "| notebook | time |", "|---|---:|"]
    lines += [f"| {n} | {_fmt_seconds(s)} |" for n, s in times.items()]
    lines += [f"| **total** | **{_fmt_seconds(sum(times.values()))}** |", ""]
    src = profile_source if profile_source and Path(profile_source).suffix in (".yaml", ".yml") \
        else f"profiles/{profile}.yaml"
    lines += [f"**Parameters** (`{src}`)", "", "```yaml"]
    lines += [f"{k}: {_flow_yaml(v)}" for k, v in params.items()]
    lines += ["```"]
    return [nbformat.v4.new_markdown_cell("\n".join(lines)), nbformat.v4.new_markdown_cell(TOC_MARKER)]


def _flow_yaml(v: Any) -> str:
    """One-line YAML of a value (``{dcgan: 30, stylegan: 30}``, ``[a, b]``, ``mnist``)."""
    text = yaml.safe_dump(v, default_flow_style=True, sort_keys=False, width=10**6)
    return text.removesuffix("...\n").strip()


def _md_cell(v: str) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _fmt_seconds(s: float) -> str:
    if s != s:  # NaN: unknown
        return "n/a"
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {s % 60:04.1f} s"


def git_commit(root: Path | None = None) -> str:
    """Short commit of the checkout (``+ uncommitted changes`` when dirty), or ``unknown``."""
    root = root or config.PACKAGE_DIR.parent
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                           text=True, timeout=10)
        if r.returncode != 0 or not r.stdout.strip():
            return "unknown (not a git checkout)"
        commit = r.stdout.strip()
        d = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, timeout=10)
        return commit + (" + uncommitted changes" if d.returncode == 0 and d.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def hardware_info() -> dict[str, str]:
    """CPU model and cores, RAM, GPU(s) and torch version of this machine, as short strings."""
    import psutil

    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    logical = os.cpu_count() or 0
    physical = psutil.cpu_count(logical=False) or logical
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = logical
    cpu = f"{model}, {physical} cores / {logical} threads"
    if usable != logical:
        cpu += f" ({usable} usable)"
    ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    try:
        import torch

        tv = torch.__version__
        if torch.cuda.is_available():
            gpu = ", ".join(
                f"{torch.cuda.get_device_name(i)} "
                f"({torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GiB)"
                for i in range(torch.cuda.device_count())
            )
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            gpu = "Apple MPS"
        else:
            gpu = "none (CPU only)"
    except ImportError:
        tv, gpu = "not installed", "unknown"
    return {"cpu": cpu, "ram": ram, "gpu": gpu, "torch": tv}
