"""Stage 4 of the report: headless Chromium prints the HTML to PDF (and takes screenshots for the
tests); without Chromium the HTML is kept and a note says how to install it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import io
from ..errors import ReportError



BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


CHROMIUM_HINT = (
    "install Chromium to get the PDF (Debian/Ubuntu: `sudo apt-get install chromium`; "
    "see `make setup`)"
)


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
