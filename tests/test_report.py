"""Report assembly: Papermill run, merge, HTML (no code, embedded figures, TOC), PDF and a browser look.

Two small synthetic notebooks stand in for the real pipeline (a few seconds per kernel start).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from ganreport import __main__ as cli
from ganreport import config, report
from ganreport.errors import ConfigError, GanreportError, ReportError

CODE_MARKER = "SECRET_CODE_MARKER_ALPHA"
SECTIONS = ["Alpha section", "Alpha details", "Beta section", "Beta setup"]
H1 = ["Alpha section", "Beta section"]
CHROMIUM = report.find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")


def _kernel() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return "ganreport" if "ganreport" in KernelSpecManager().find_kernel_specs() else "python3"


def _nb(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _tagged(cell, *tags):
    cell.metadata["tags"] = list(tags)
    return cell


def _write_notebooks(d: Path) -> None:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    alpha = _nb([
        md("# Alpha section\n\nText about alpha.\n\n## Alpha details"),
        _tagged(code('profile = "smoke"\nscale = 1.0'), "parameters"),
        code(f"import matplotlib.pyplot as plt\n{CODE_MARKER} = 1\nprint(f'scale={{scale}}')\n"
             "fig, ax = plt.subplots(figsize=(4, 2.5))\n"
             "ax.plot([0, 1, 2], [0, scale, 0], lw=4, label='alpha')\n"
             "ax.set_xlabel('x'); ax.set_ylabel('y'); ax.legend()\nplt.show()"),
        code("import ipywidgets\nipywidgets.IntSlider(value=3, description='WIDGET_ONLY')"),
        code("from IPython.display import HTML, display\nimport ipywidgets\n"
             "display({'application/vnd.jupyter.widget-view+json': "
             "{'model_id': 'x', 'version_major': 2, 'version_minor': 0},\n"
             "         'text/plain': 'Widget()', 'text/html': '<b>STATIC_FALLBACK_SHOWN</b>'}, raw=True)"),
        _tagged(code("print('REMOVED_CELL_OUTPUT')"), "remove_cell"),
        code("import sys\nprint('PROGRESS_ON_STDERR', file=sys.stderr)"),
    ])
    beta = _nb([
        md("# Beta section\n\n## Beta setup"),
        _tagged(code('profile = "smoke"'), "parameters"),
        code("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 2.5))\n"
             "ax.bar(['a', 'b'], [1, 2])\nax.set_title('beta bars')\nplt.show()"),
    ])
    broken = _nb([
        md("# Broken"),
        _tagged(code('profile = "smoke"'), "parameters"),
        code("x = 1"),
        code("# the failing step\nraise ValueError('boom-' + str(x))"),
    ])
    d.mkdir(parents=True, exist_ok=True)
    nbformat.write(alpha, d / "01_alpha.ipynb")
    nbformat.write(beta, d / "02_beta.ipynb")
    nbformat.write(broken, d / "03_broken.ipynb")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    _write_notebooks(root / "nbs")
    prof = root / "testprof.yaml"
    prof.write_text("profile: testprof\nscale: 2.5\nbatch_size: 7\n")
    res = report.build_report(str(prof), notebooks_dir=root / "nbs", notebooks=["01_alpha", "02_beta"],
                              out_dir=root / "out", runs_root=root / "runs", kernel_name=_kernel())
    res["root"], res["prof"] = root, prof
    res["text"] = res["html"].read_text()
    return res


def test_html_has_sections_title_page_and_no_code(built):
    page = built["text"]
    for title in SECTIONS:
        assert title in page
    assert CODE_MARKER not in page                      # inputs excluded
    assert "profile = " not in page and "plt.subplots" not in page
    assert "scale=2.5" in page                          # profile value reached the notebook
    for field in ("Profile", "testprof", "Date", "Git commit", "CPU", "RAM", "GPU", "torch",
                  "Run time per notebook", "01_alpha", "02_beta"):
        assert field in page, field
    assert built["executed"]["01_alpha"].is_file() and built["executed"]["02_beta"].is_file()
    assert built["executed"]["01_alpha"].parent == built["root"] / "runs" / "testprof" / "notebooks"
    assert set(built["times"]) == {"01_alpha", "02_beta"} and all(t > 0 for t in built["times"].values())


def test_figures_embedded_and_offline(built):
    page = built["text"]
    imgs = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert len(imgs) == 2                               # one per plot, nothing else
    assert all(src.startswith("data:image/png;base64,") and len(src) > 2000 for src in imgs)
    assert not re.search(r'<script[^>]*src="https?:', page)   # no CDN (MathJax, require.js, widgets)
    assert not re.search(r'<link[^>]*href="https?:', page)


def test_toc_links_every_heading(built):
    page = built["text"]
    toc = re.search(r'<nav class="ganreport-toc".*?</nav>', page, re.S).group(0)
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', toc)
    assert [t for _, t in links] == SECTIONS
    for anchor, _ in links:
        assert f'id="{anchor}"' in page
    assert [(lvl, t) for lvl, t, _ in built["sections"]] == [(1, "Alpha section"), (2, "Alpha details"),
                                                              (1, "Beta section"), (2, "Beta setup")]


def test_widgets_stderr_and_removed_cells_are_static(built):
    page = built["text"]
    assert "widget-view+json" not in page and "WIDGET_ONLY" not in page
    assert "STATIC_FALLBACK_SHOWN" in page              # the widget's text/html fallback is shown
    assert "REMOVED_CELL_OUTPUT" not in page
    assert "PROGRESS_ON_STDERR" not in page
    # the executed copy still holds everything
    executed = built["executed"]["01_alpha"].read_text()
    assert "PROGRESS_ON_STDERR" in executed and "REMOVED_CELL_OUTPUT" in executed


def test_only_declared_parameters_are_passed(built):
    def injected(name):
        nb = nbformat.read(built["executed"][name], as_version=4)
        return "".join(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))

    a, b = injected("01_alpha"), injected("02_beta")
    assert "scale = 2.5" in a and "batch_size" not in a
    assert "scale" not in b and 'profile = "testprof"' in b


@needs_chromium
def test_pdf_has_a_page_per_section(built):
    from pypdf import PdfReader

    assert built["pdf"] is not None and built["pdf"].is_file()
    pages = [p.extract_text() or "" for p in PdfReader(str(built["pdf"])).pages]
    assert built["pages"] == len(pages)
    assert len(pages) >= len(H1) + 1                    # title page + one per top-level section
    assert "GAN report" in pages[0]
    starts = {}
    for i, text in enumerate(pages):
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        starts.setdefault(first, i)
    found = [starts.get(title) for title in H1]
    assert None not in found, starts                    # each h1 opens a page
    assert len(set(found)) == len(H1) and found == sorted(found)


@needs_chromium
def test_browser_screenshot_is_not_blank(built, tmp_path):
    from PIL import Image

    png = report.screenshot_html(built["html"], tmp_path / "shot.png", width=1200, height=2400)
    img = np.asarray(Image.open(png).convert("RGB")).astype(np.float64)
    gray = img.mean(axis=2)
    assert gray.std() > 8.0                             # a white page has std 0
    assert (gray < 200).mean() > 0.005                  # text and figures cover some of it
    # matplotlib's first colour (#1f77b4) shows: the embedded figure rendered in the browser
    blue = (np.abs(img - np.array([31, 119, 180])) < 40).all(axis=2)
    assert blue.sum() > 200


def test_skip_run_rebuilds_from_executed_copies(built, monkeypatch, tmp_path):
    monkeypatch.setattr(report, "find_chromium", lambda: None)
    root = built["root"]
    res = report.build_report(str(built["prof"]), skip_run=True, notebooks_dir=root / "nbs",
                              notebooks=["01_alpha", "02_beta"], out_dir=tmp_path, runs_root=root / "runs")
    assert res["pdf"] is None and "Chromium" in res["note"]
    assert (tmp_path / "report.html").is_file() and not (tmp_path / "report.pdf").exists()
    assert all(t > 0 for t in res["times"].values())    # read from papermill's metadata
    assert "Beta section" in (tmp_path / "report.html").read_text()


def test_skip_run_without_executed_copies_is_an_error(built, tmp_path):
    with pytest.raises(ReportError, match="without --skip-run"):
        report.build_report(str(built["prof"]), skip_run=True, notebooks_dir=built["root"] / "nbs",
                            notebooks=["01_alpha"], out_dir=tmp_path, runs_root=tmp_path / "runs")


def test_failing_notebook_names_notebook_and_cell(built, tmp_path):
    with pytest.raises(GanreportError) as ei:
        report.build_report(str(built["prof"]), notebooks_dir=built["root"] / "nbs", notebooks=["03_broken"],
                            out_dir=tmp_path / "out", runs_root=tmp_path / "runs", kernel_name=_kernel())
    msg = str(ei.value)
    assert "03_broken.ipynb" in msg and "cell 3" in msg and "the failing step" in msg
    assert "ValueError: boom-1" in msg
    assert not (tmp_path / "out" / "report.html").exists()


def test_cli_reports_failure_without_traceback(built, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", built["root"] / "nbs")
    monkeypatch.setattr(config, "NOTEBOOKS", ("01_missing", "03_broken"))
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(report, "run_notebook", _with_kernel(report.run_notebook))
    rc = cli.main(["report", "--profile", str(built["prof"])])
    out = capsys.readouterr()
    assert rc != 0
    assert "error: notebook 03_broken.ipynb failed in cell 3" in out.err and "boom-1" in out.err
    assert "Traceback" not in out.err
    assert "01_missing" in out.out                      # a missing notebook is named, not fatal


def _with_kernel(fn):
    def run(*a, **kw):
        kw["kernel_name"] = _kernel()
        return fn(*a, **kw)
    return run


def test_notebook_discovery(tmp_path):
    (tmp_path / "02_b.ipynb").write_text("{}")
    (tmp_path / "01_a.ipynb").write_text("{}")
    assert [p.name for p in report.discover_notebooks(tmp_path, ["02_b", "01_a.ipynb"])] == ["02_b.ipynb", "01_a.ipynb"]
    with pytest.raises(ConfigError, match="not found"):
        report.discover_notebooks(tmp_path, ["01_a", "03_c"])
    with pytest.raises(ConfigError, match="no notebooks"):
        report.discover_notebooks(tmp_path / "empty")


def test_static_outputs_drop_widget_views_and_stderr():
    outs = [
        {"output_type": "stream", "name": "stderr", "text": "10%|#"},
        {"output_type": "stream", "name": "stdout", "text": "kept"},
        {"output_type": "display_data", "metadata": {},
         "data": {report.WIDGET_MIME: {"model_id": "a"}, "text/plain": "IntSlider()"}},
        {"output_type": "display_data", "metadata": {},
         "data": {report.WIDGET_MIME: {"model_id": "b"}, "text/plain": "W", "image/png": "iVBO"}},
    ]
    kept = report.static_outputs(outs)
    assert [o.get("text") for o in kept[:1]] == ["kept"]
    assert len(kept) == 2 and kept[1]["data"] == {"text/plain": "W", "image/png": "iVBO"}
    assert report.WIDGET_MIME in outs[3]["data"]        # input not mutated


def test_toc_makes_duplicate_heading_ids_unique():
    page = ('<h1 id="Intro">Title</h1>' + report.TOC_MARKER
            + '<h1 id="Setup">Setup<a class="anchor-link" href="#Setup">¶</a></h1>'
            + '<h2 id="Setup">Setup<a class="anchor-link" href="#Setup">¶</a></h2><h3 id="x">x</h3>')
    out, entries = report.add_toc(page)
    assert entries == [(1, "Setup", "Setup"), (2, "Setup", "Setup-2")]
    assert 'id="Setup-2"' in out and 'href="#Setup-2"' in out and report.TOC_MARKER not in out
    assert out.count('href="#Intro"') == 0              # headings before the TOC are not listed
