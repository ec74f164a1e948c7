"""Stage 1 of the report: find the notebooks and run each with Papermill (kernel ``ganreport``, the
profile's keys that its ``parameters`` cell declares); a failing cell becomes one
:class:`~ganreport.errors.ReportError` naming the notebook, the cell and the exception.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat

from .. import config
from ..errors import ConfigError, ReportError



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


def declared_parameters(sources: Sequence[Path]) -> set[str]:
    """Names the notebooks' ``parameters`` cells declare (Papermill's inspection); an unreadable
    notebook declares nothing here and fails with its own message when it runs."""
    import papermill as pm

    names: set[str] = set()
    for src in sources:
        try:
            names |= set(pm.inspect_notebook(str(src)))
        except Exception:  # noqa: BLE001 - reported by run_notebook
            continue
    return names


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
