"""Stage 3 of the report: nbconvert's ``HTMLExporter`` (lab template, inputs hidden, ``remove_input`` /
``remove_cell`` / ``remove_output`` tags honoured, no script from the network) and the table of
contents built from the page's headings.
"""

from __future__ import annotations

import html as _html
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat

from .merge import TOC_MARKER


REMOVE_INPUT_TAGS = ("remove_input",)


REMOVE_CELL_TAGS = ("remove_cell",)


REMOVE_OUTPUT_TAGS = ("remove_output",)


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
