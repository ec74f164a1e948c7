"""Build the report: run the notebooks with Papermill, merge them, export HTML (code hidden), print a PDF.

``python -m ganreport report --profile P`` (and ``make report``) calls :func:`build_report`:

1. the notebooks named in ``config.NOTEBOOKS`` that exist in ``notebooks/`` run in that order
   with Papermill (kernel ``ganreport``, working directory ``notebooks/``); each receives the keys
   of ``profiles/P.yaml`` that its ``parameters`` cell declares; executed copies go to
   ``runs/<profile>/notebooks/``. The first failing cell stops the run with a
   :class:`~ganreport.errors.ReportError` naming the notebook, the cell and the exception;
2. the executed notebooks are merged with nbformat behind a title page (profile, date, git
   commit, hardware, torch version, run time per notebook) and a table of contents;
3. nbconvert's ``HTMLExporter`` (lab template, inputs excluded, ``remove_input`` /
   ``remove_cell`` / ``remove_output`` tags honoured) writes ``reports/report.html``: figures are
   base64 images, no script is loaded from the network (MathJax, require.js and the widget
   manager are left out, so LaTeX in markdown shows as typed), widget outputs are replaced by
   their static fallback and stderr streams (progress bars, warnings) are dropped;
4. headless Chromium prints that file to ``reports/report.pdf`` (each ``#`` section on a new
   page, figures never split); without Chromium the HTML is kept and a note says how to install it.
"""

from __future__ import annotations

import copy
import datetime as _dt
import html as _html
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import yaml

from . import config, io
from .errors import ConfigError, ReportError

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SKIP_TAGS = frozenset({"parameters", "injected-parameters", "papermill-error-cell-tag"})
REMOVE_INPUT_TAGS = ("remove_input",)
REMOVE_CELL_TAGS = ("remove_cell",)
REMOVE_OUTPUT_TAGS = ("remove_output",)
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TOC_MARKER = "<!-- ganreport:toc -->"
CHROMIUM_HINT = (
    "install Chromium to get the PDF (Debian/Ubuntu: `sudo apt-get install chromium`; "
    "see `make setup`)"
)

# Print and screen style, added after the lab template's own CSS.
REPORT_CSS = """
body.jp-Notebook { max-width: 1080px; margin: 0 auto; padding: 24px 36px; }
.jp-OutputArea-output img { max-width: 100%; height: auto; }
.jp-RenderedHTMLCommon table { font-size: 0.92em; }
main > .jp-Cell:first-child table { margin-left: 0; }
nav.ganreport-toc h2 { margin-top: 0; }
nav.ganreport-toc ul { list-style: none; padding-left: 1.3em; margin: 0.15em 0; }
nav.ganreport-toc > ul { padding-left: 0; }
nav.ganreport-toc li { margin: 0.15em 0; }
nav.ganreport-toc a { text-decoration: none; }
@page { size: A4; margin: 14mm 12mm 14mm 12mm; }
@media print {
  body.jp-Notebook { max-width: none; margin: 0; padding: 0; font-size: 10.5pt; }
  /* tables and flex boxes swallow forced page breaks: lay the cells out as plain blocks */
  .jp-Cell, .jp-Cell-inputWrapper, .jp-Cell-outputWrapper, .jp-InputArea, .jp-OutputArea,
  .jp-OutputArea-child, .jp-RenderedMarkdown, .jp-MarkdownOutput { display: block !important; }
  .jp-OutputArea-output { display: block; }
  .jp-InputPrompt, .jp-OutputPrompt { display: none !important; }
  h1 { break-before: page; page-break-before: always; }
  main > .jp-Cell:first-child h1 { break-before: auto; page-break-before: auto; }
  nav.ganreport-toc { break-before: page; page-break-before: always; }
  h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  .jp-OutputArea-output img, .jp-OutputArea-output svg, figure, tr {
    break-inside: avoid; page-break-inside: avoid; }
  .jp-OutputArea-output img { max-height: 255mm; object-fit: contain; }
  pre { white-space: pre-wrap !important; overflow-wrap: anywhere; }
  /* wide tables (architecture x metric with CIs) must fit the A4 width: no horizontal scrolling on paper */
  .jp-RenderedHTMLCommon table { font-size: 7pt; }
  .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 0.2em 0.35em; }
  main > .jp-Cell:first-child table { font-size: 9pt; }  /* the title page's narrow tables */
  a { color: inherit; text-decoration: none; }
}
"""

_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style type="text/css">{{ resources.ganreport_css }}</style>
{%- endblock html_head_css -%}
"""


# --------------------------------------------------------------------------- entry point
def build_report(
    profile: str,
    skip_run: bool = False,
    *,
    notebooks_dir: str | Path | None = None,
    notebooks: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    runs_root: str | Path | None = None,
    kernel_name: str = "ganreport",
    pdf: bool = True,
    cell_timeout: int | None = None,
) -> dict[str, Any]:
    """Run the notebooks of ``profile`` and write ``report.html`` and ``report.pdf``.

    Parameters
    ----------
    profile : str
        Profile name (``smoke``, ``quick``, ``full``) or path to a YAML parameter file.
    skip_run : bool
        Do not execute anything; merge the executed copies already in ``runs/<profile>/notebooks``.
    notebooks_dir : path, optional
        Folder holding the notebooks (default ``config.NOTEBOOKS_DIR``); also the kernel's cwd.
    notebooks : sequence of str, optional
        Notebook names in run order (default ``config.NOTEBOOKS``, keeping those that exist).
        Names given here explicitly must exist.
    out_dir : path, optional
        Where ``report.html`` / ``report.pdf`` go (default ``config.REPORTS_DIR``).
    runs_root : path, optional
        Root of the run folders (default ``config.RUNS_DIR``).
    kernel_name : str
        Jupyter kernel that executes the notebooks.
    pdf : bool
        Print the PDF with Chromium when one is installed.
    cell_timeout : int, optional
        Seconds a single cell may run (default: no limit).

    Returns
    -------
    dict
        ``profile``, ``html`` (Path), ``pdf`` (Path or None), ``pages`` (int or None),
        ``executed`` ({name: Path}), ``times`` ({name: seconds}), ``sections`` (TOC entries
        ``(level, text, anchor)``), ``note`` (why there is no PDF, or None).
    """
    params = config.load_profile(profile)
    name = _profile_name(profile, params)
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else config.NOTEBOOKS_DIR
    out = Path(out_dir) if out_dir is not None else config.REPORTS_DIR
    exec_dir = config.run_dir(name, Path(runs_root) if runs_root is not None else None) / "notebooks"
    sources = discover_notebooks(nb_dir, notebooks)

    executed: dict[str, Path] = {}
    times: dict[str, float] = {}
    if skip_run:
        for src in sources:
            dst = exec_dir / src.name
            if not dst.is_file():
                raise ReportError(
                    f"no executed copy of {src.name} in {exec_dir}; run `python -m ganreport report "
                    f"--profile {profile}` without --skip-run first"
                )
            executed[src.stem], times[src.stem] = dst, _recorded_duration(dst)
    else:
        exec_dir.mkdir(parents=True, exist_ok=True)
        for i, src in enumerate(sources, 1):
            print(f"[{i}/{len(sources)}] running {src.name} (profile {name}) ...", flush=True)
            dst = exec_dir / src.name
            times[src.stem] = run_notebook(src, dst, params, kernel_name=kernel_name, cwd=nb_dir,
                                           cell_timeout=cell_timeout)
            executed[src.stem] = dst
            print(f"      {src.name} done in {times[src.stem]:.1f} s", flush=True)

    nbs = [(stem, _read_executed(path)) for stem, path in executed.items()]
    front = title_cells(name, params, times, profile_source=profile)
    merged = merge_notebooks(nbs, front)
    page, sections = export_html(merged, resources_path=nb_dir, title=f"GAN report ({name})")
    html_path = out / "report.html"
    io.write_text(html_path, page)

    pdf_path: Path | None = None
    pages: int | None = None
    note: str | None = None
    browser = find_chromium()
    if not pdf:
        note = "PDF not requested"
    elif browser is None:
        note = f"no Chromium found, so no PDF; the HTML report is complete. To get the PDF, {CHROMIUM_HINT}"
    else:
        try:
            pdf_path = print_pdf(html_path, out / "report.pdf", browser)
        except ReportError as e:
            raise ReportError(f"{e}\nthe HTML report was written: {html_path}") from None
        pages = count_pdf_pages(pdf_path)

    _print_summary(times, html_path, pdf_path, pages, note)
    return {"profile": name, "html": html_path, "pdf": pdf_path, "pages": pages, "executed": executed,
            "times": times, "sections": sections, "note": note}


# --------------------------------------------------------------------------- notebooks
def discover_notebooks(notebooks_dir: Path, names: Sequence[str] | None = None) -> list[Path]:
    """Notebook files in run order: ``names`` (all must exist) or the existing ones of ``config.NOTEBOOKS``."""
    notebooks_dir = Path(notebooks_dir)
    explicit = names is not None
    wanted = list(names) if explicit else list(config.NOTEBOOKS)
    found, missing = [], []
    for n in wanted:
        path = notebooks_dir / (n if n.endswith(".ipynb") else f"{n}.ipynb")
        (found if path.is_file() else missing).append(path)
    if explicit and missing:
        raise ConfigError(f"notebook(s) not found: {', '.join(str(p) for p in missing)}")
    if not found:
        raise ConfigError(
            f"no notebooks to run in {notebooks_dir} (looked for {', '.join(wanted) or 'nothing'})"
        )
    if missing:
        print(f"note: not in {notebooks_dir} (left out of the report): "
              f"{', '.join(p.name for p in missing)}", flush=True)
    return found


def run_notebook(src: Path, dst: Path, params: dict[str, Any], *, kernel_name: str = "ganreport",
                 cwd: Path | None = None, cell_timeout: int | None = None) -> float:
    """Execute ``src`` into ``dst`` with Papermill; return the wall time in seconds.

    Only the profile keys that the notebook's ``parameters`` cell declares are passed. A failure
    raises :class:`ReportError` with the notebook, the cell (index in ``src`` and its first
    line) and the exception; ``dst`` keeps the partial run with the full traceback.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    src, dst = Path(src), Path(dst)
    try:
        declared = pm.inspect_notebook(str(src))
    except Exception as e:  # unreadable / invalid notebook
        raise ReportError(f"notebook {src.name} cannot be read: {type(e).__name__}: {e}") from None
    passed = {k: params[k] for k in declared if k in params}
    dst.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        with _inline_matplotlib():
            pm.execute_notebook(
                str(src), str(dst), parameters=passed, kernel_name=kernel_name,
                cwd=str(cwd if cwd is not None else src.parent), log_output=False,
                progress_bar=False, execution_timeout=cell_timeout,
                extra_arguments=_quiet_kernel_args(kernel_name),
            )
    except PapermillExecutionError as e:
        index, first = _locate_cell(src, e.source, e.cell_index)
        raise ReportError(
            f"notebook {src.name} failed in cell {index} ({first!r}): {e.ename}: {e.evalue}\n"
            f"the executed copy with the full traceback is {dst}"
        ) from None
    except Exception as e:
        hint = ""
        if type(e).__name__ == "NoSuchKernel":
            hint = f"; register it with `make setup` (or choose another kernel than {kernel_name!r})"
        raise ReportError(
            f"notebook {src.name} could not be executed: {type(e).__name__}: {e}{hint}"
        ) from None
    return time.perf_counter() - t0


def _quiet_kernel_args(kernel_name: str) -> list[str]:
    """Command-line options that keep an IPython kernel's startup warnings off the console."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except Exception:  # unknown kernel: papermill reports it
        return []
    return ["--IPKernelApp.log_level=ERROR"] if any("ipykernel" in a for a in argv) else []


@contextmanager
def _inline_matplotlib() -> Iterator[None]:
    """Let the kernel choose the inline backend: an inherited ``MPLBACKEND=Agg`` hides every figure."""
    old = os.environ.get("MPLBACKEND")
    if old is not None and "inline" not in old:
        del os.environ["MPLBACKEND"]
    try:
        yield
    finally:
        if old is not None:
            os.environ["MPLBACKEND"] = old


def _locate_cell(src: Path, source: str, fallback: int) -> tuple[int, str]:
    """Index of the code cell holding ``source`` in the source notebook and its first non-blank line."""
    first = next((ln.strip() for ln in (source or "").splitlines() if ln.strip()), "")
    try:
        nb = nbformat.read(src, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and cell.source == source:
                return i, first
    except Exception:
        pass
    return fallback, first


def _read_executed(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    pm_meta = nb.metadata.get("papermill", {})
    if pm_meta.get("exception"):
        raise ReportError(f"{path} holds a failed run; run the report again without --skip-run")
    return nb


def _recorded_duration(path: Path) -> float:
    try:
        nb = nbformat.read(path, as_version=4)
        return float(nb.metadata.get("papermill", {}).get("duration") or float("nan"))
    except Exception:
        return float("nan")


def _profile_name(profile: str, params: dict[str, Any]) -> str:
    p = params.get("profile")
    if isinstance(p, str) and p:
        return p
    path = Path(profile)
    return path.stem if path.suffix in (".yaml", ".yml") else profile


# --------------------------------------------------------------------------- merging
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


# --------------------------------------------------------------------------- HTML
def export_html(nb: nbformat.NotebookNode, resources_path: str | Path = ".",
                title: str = "GAN report") -> tuple[str, list[tuple[int, str, str]]]:
    """HTML page of ``nb`` (lab template, no inputs, offline) and its TOC entries ``(level, text, id)``."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    with tempfile.TemporaryDirectory(prefix="ganreport-tpl-") as td:
        tpl = Path(td) / "ganreport_report.html.j2"
        tpl.write_text(_TEMPLATE)
        exporter = HTMLExporter(template_name="lab", template_file=tpl.name, extra_template_paths=[td],
                                exclude_input=True, exclude_input_prompt=True,
                                exclude_output_prompt=True, embed_images=True)
        exporter.register_preprocessor(
            TagRemovePreprocessor(remove_input_tags=set(REMOVE_INPUT_TAGS),
                                  remove_cell_tags=set(REMOVE_CELL_TAGS),
                                  remove_all_outputs_tags=set(REMOVE_OUTPUT_TAGS), enabled=True),
            enabled=True,
        )
        resources = {"metadata": {"name": title, "path": str(resources_path)},
                     "ganreport_css": REPORT_CSS}
        body, _ = exporter.from_notebook_node(nb, resources=resources)
    return add_toc(body)


_HEADING = re.compile(r'<h([12])(\s[^>]*?)?\sid="([^"]*)"([^>]*)>(.*?)</h\1>', re.S)


def add_toc(page: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Replace the TOC marker by links to every h1/h2 heading after it; make heading ids unique."""
    start = page.find(TOC_MARKER)
    if start < 0:
        return page, []
    head, tail = page[:start], page[start + len(TOC_MARKER):]
    seen: dict[str, int] = {}
    entries: list[tuple[int, str, str]] = []

    def fix(m: re.Match) -> str:
        level, anchor, inner = int(m.group(1)), m.group(3), m.group(5)
        n = seen.get(anchor, 0)
        seen[anchor] = n + 1
        new = anchor if n == 0 else f"{anchor}-{n + 1}"
        text = _html.unescape(re.sub(r"<[^>]+>", "", inner)).replace("¶", "").strip()
        entries.append((level, text, new))
        if new == anchor:
            return m.group(0)
        inner = inner.replace(f'href="#{anchor}"', f'href="#{new}"')
        return f'<h{level}{m.group(2) or ""} id="{new}"{m.group(4)}>{inner}</h{level}>'

    tail = _HEADING.sub(fix, tail)
    return head + _toc_html(entries) + tail, entries


def _toc_html(entries: Sequence[tuple[int, str, str]]) -> str:
    parts = ['<nav class="ganreport-toc" id="contents"><h2>Contents</h2>', "<ul>"]
    open_sub = False
    for i, (level, text, anchor) in enumerate(entries):
        link = f'<a href="#{_html.escape(anchor, quote=True)}">{_html.escape(text)}</a>'
        if level == 1 or i == 0:
            if open_sub:
                parts.append("</ul></li>")
                open_sub = False
            elif i > 0:
                parts.append("</li>")
            parts.append(f"<li>{link}")
        else:
            if not open_sub:
                parts.append("<ul>")
                open_sub = True
            parts.append(f"<li>{link}</li>")
    if entries:
        parts.append("</ul></li>" if open_sub else "</li>")
    parts.append("</ul></nav>")
    return "".join(parts)


# --------------------------------------------------------------------------- PDF / browser
def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(browser: str, args: list[str], target: Path, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="ganreport-chromium-") as profile_dir:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile_dir}", *args,
               Path(target).resolve().as_uri()]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ReportError(f"{browser} did not finish within {timeout:.0f} s on {target}") from None
        if r.returncode != 0:
            tail = "\n".join((r.stderr or "").strip().splitlines()[-8:])
            raise ReportError(f"{browser} failed (exit {r.returncode}) on {target}:\n{tail}")


def print_pdf(html_path: Path, pdf_path: Path, browser: str | None = None, timeout: float = 300) -> Path:
    """Print ``html_path`` to ``pdf_path`` (atomically) with headless Chromium."""
    browser = browser or find_chromium()
    if browser is None:
        raise ReportError(f"cannot print {pdf_path}: no Chromium found; {CHROMIUM_HINT}")

    def write(tmp: Path) -> None:
        _chromium(browser, ["--no-pdf-header-footer", "--print-to-pdf-no-header",
                            f"--print-to-pdf={tmp}"], html_path, timeout)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise ReportError(f"{browser} wrote no PDF for {html_path}; the HTML report is still there")

    io.atomic_write(Path(pdf_path), write)
    return Path(pdf_path)


def screenshot_html(html_path: Path, png_path: Path, width: int = 1280, height: int = 1600,
                    browser: str | None = None, timeout: float = 120) -> Path:
    """PNG screenshot of the top ``width`` x ``height`` pixels of ``html_path`` in headless Chromium."""
    browser = browser or find_chromium()
    if browser is None:
        raise ReportError(f"cannot take a screenshot: no Chromium found; {CHROMIUM_HINT}")
    png_path = Path(png_path)
    _chromium(browser, [f"--window-size={width},{height}", f"--screenshot={png_path.resolve()}"],
              html_path, timeout)
    if not png_path.is_file():
        raise ReportError(f"{browser} wrote no screenshot for {html_path}")
    return png_path


def count_pdf_pages(path: Path) -> int | None:
    """Number of pages (pypdf, else ``pdfinfo``), or None when neither is available."""
    try:
        from pypdf import PdfReader

        return len(PdfReader(str(path)).pages)
    except ImportError:
        pass
    if shutil.which("pdfinfo"):
        r = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True)
        m = re.search(r"^Pages:\s+(\d+)", r.stdout, re.M)
        if m:
            return int(m.group(1))
    return None


def _print_summary(times: dict[str, float], html_path: Path, pdf_path: Path | None,
                   pages: int | None, note: str | None) -> None:
    width = max([len(n) for n in times] + [len("notebook")])
    lines = ["", f"{'notebook'.ljust(width)}  time"]
    lines += [f"{n.ljust(width)}  {_fmt_seconds(s)}" for n, s in times.items()]
    lines += [f"{'total'.ljust(width)}  {_fmt_seconds(sum(times.values()))}", ""]
    lines.append(f"HTML: {html_path} ({html_path.stat().st_size / 1e6:.1f} MB)")
    if pdf_path is not None:
        lines.append(f"PDF:  {pdf_path}" + (f" ({pages} pages)" if pages else ""))
    if note:
        lines.append(f"note: {note}")
    print("\n".join(lines), flush=True)
    sys.stdout.flush()
