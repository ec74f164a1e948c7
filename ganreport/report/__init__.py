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

One file per stage: :mod:`.execute` (Papermill), :mod:`.merge` (nbformat, title page),
:mod:`.export` (nbconvert HTML, table of contents), :mod:`.pdf` (headless Chromium). This module
holds :func:`build_report`, which runs them in order.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import config, io
from ..errors import ReportError
from .execute import (_profile_name, _read_executed, _recorded_duration, declared_parameters, discover_notebooks,
                      run_notebook)
from .export import add_toc, export_html
from .merge import TOC_MARKER, WIDGET_MIME, _fmt_seconds, merge_notebooks, static_outputs, title_cells
from .pdf import CHROMIUM_HINT, count_pdf_pages, find_chromium, print_pdf, screenshot_html


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
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else config.NOTEBOOKS_DIR
    sources = discover_notebooks(nb_dir, notebooks)
    # the profile is checked before anything runs; keys that a notebook's parameters cell declares are known too
    params = config.profile_params(profile, extra=declared_parameters(sorted(nb_dir.glob("*.ipynb"))))
    name = _profile_name(profile, params)
    out = Path(out_dir) if out_dir is not None else config.REPORTS_DIR
    exec_dir = config.run_dir(name, Path(runs_root) if runs_root is not None else None) / "notebooks"

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


__all__ = ["build_report", "discover_notebooks", "run_notebook", "merge_notebooks", "static_outputs", "title_cells",
           "export_html", "add_toc", "find_chromium", "print_pdf", "screenshot_html", "count_pdf_pages", "TOC_MARKER",
           "WIDGET_MIME", "CHROMIUM_HINT", "declared_parameters"]
