"""Every notebooks/*.ipynb runs top to bottom at the tiny budget (JAXRL_NOTEBOOK_BUDGET=tiny).

Each notebook is executed with nbclient in a fresh python3 kernel of this interpreter (the
ipykernel of the same environment), working directory and JAXRL_NOTEBOOK_RUNS inside tmp_path,
so the repository's runs/ is never written. A new notebook is picked up by the glob; the ones
that take minutes even at the tiny budget (compiling MuJoCo physics, several learners) are marked
slow here and run with `make test-slow`. The committed notebooks carry no outputs.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import nbformat
import pytest

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
# Minutes at the tiny budget on a 2-core CPU: SAC on dmc/CartpoleBalance compiles MJX physics for
# two learners (2-4.5 min), three DQN learners compile (40-75 s; with the others about 2 min).
SLOW = {"off_policy_least.ipynb", "plasticity.ipynb"}


def _run_all():
    spec = importlib.util.spec_from_file_location("notebooks_run_all", NOTEBOOKS_DIR / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run_all = _run_all()


def test_notebooks_found():
    assert {"quickstart.ipynb", "forgetting_attention.ipynb"} <= {path.name for path in NOTEBOOKS}
    assert SLOW <= {path.name for path in NOTEBOOKS}, "a notebook marked slow here no longer exists"


def test_kernel_is_this_interpreter(tmp_path):
    """The python3 kernel runs sys.executable (the venv's python), not a python found elsewhere."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import os, sys; print(sys.executable); print(os.getcwd())")]
    path = tmp_path / "probe.ipynb"
    nbformat.write(notebook, str(path))
    executed = run_all.execute_notebook(path, budget="tiny", cwd=tmp_path, timeout=120)
    executable, cwd = executed.cells[0].outputs[0].text.split()
    assert pathlib.Path(executable).resolve() == pathlib.Path(sys.executable).resolve()
    assert pathlib.Path(cwd).resolve() == tmp_path.resolve()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(str(path), as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {index} has outputs"


@pytest.mark.parametrize(
    "path", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p for p in NOTEBOOKS],
    ids=lambda path: path.stem,
)
def test_notebook_runs_at_tiny_budget(path, tmp_path):
    runs = tmp_path / "runs" / "notebooks"
    executed = run_all.execute_notebook(path, budget="tiny", cwd=tmp_path, runs=runs, timeout=900)
    assert (runs / path.stem / "tiny").is_dir(), f"{path.name} wrote nothing under {runs / path.stem}"
    errors = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert not errors  # nbclient raises CellExecutionError first; this guards allow_errors


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart", "fox_lm"])
def test_second_run_reuses_the_finished_runs(name, tmp_path):
    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    runs = tmp_path / "runs" / "notebooks"
    run_all.execute_notebook(path, budget="tiny", cwd=tmp_path, runs=runs, timeout=900)
    executed = run_all.execute_notebook(path, budget="tiny", cwd=tmp_path, runs=runs, timeout=900)
    text = "".join(output.get("text", "") for cell in executed.cells if cell.cell_type == "code"
                   for output in cell.outputs)
    assert "reusing the finished run" in text
