"""Executes the notebooks with nbclient and writes the executed copies (`make notebooks`).

    python notebooks/run_all.py                      # every notebook, full budget, copies in runs/notebooks/
    python notebooks/run_all.py --budget tiny        # a few seconds of training each (what the tests run)
    python notebooks/run_all.py plasticity.ipynb     # only the notebooks named

Each notebook runs in a fresh `python3` kernel of this interpreter (ipykernel in the same
environment), with JAXRL_NOTEBOOK_BUDGET set for the kernel and the working directory given by
--cwd (the repository root by default), so its runs land in <cwd>/runs/notebooks/<name>/.
Prints every notebook's wall time; exits with 1 if any cell of any notebook raised.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = NOTEBOOKS_DIR.parent
BUDGETS = ("full", "tiny")
BUDGET_VARIABLE = "JAXRL_NOTEBOOK_BUDGET"
RUNS_VARIABLE = "JAXRL_NOTEBOOK_RUNS"


def notebook_paths(names: list[str] | None = None) -> list[pathlib.Path]:
    """notebooks/*.ipynb (sorted), or the ones named (with or without .ipynb)."""
    if not names:
        return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    paths = []
    for name in names:
        path = NOTEBOOKS_DIR / (name if name.endswith(".ipynb") else f"{name}.ipynb")
        if not path.exists():
            valid = ", ".join(p.name for p in notebook_paths())
            raise SystemExit(f"no notebook {path.name} in {NOTEBOOKS_DIR}; valid: {valid}")
        paths.append(path)
    return paths


def execute_notebook(path: str | pathlib.Path, *, budget: str, cwd: str | pathlib.Path,
                     runs: str | pathlib.Path | None = None, timeout: int = 1800,
                     extra_env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Runs every cell of the notebook at `path` in a new python3 kernel (this interpreter) with
    working directory `cwd`; returns the executed notebook. Raises CellExecutionError naming the
    cell and its traceback when a cell raises. runs: JAXRL_NOTEBOOK_RUNS for the kernel (default:
    the notebooks' own default, runs/notebooks under cwd); timeout: seconds per cell."""
    if budget not in BUDGETS:
        raise ValueError(f"invalid budget {budget!r}: expected one of {BUDGETS}")
    notebook = nbformat.read(str(path), as_version=4)
    env = dict(os.environ, **(extra_env or {}))
    env[BUDGET_VARIABLE] = budget
    if runs is not None:
        env[RUNS_VARIABLE] = str(runs)
    # XLA:CPU's multi-threaded Eigen pool can wedge when several JAX processes share few cores.
    if "xla_cpu_multi_thread_eigen" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
    # kernel "python3" with ipykernel installed here: jupyter_client starts it with sys.executable
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook names (default: every notebooks/*.ipynb)")
    parser.add_argument("--budget", choices=BUDGETS, default=os.environ.get(BUDGET_VARIABLE, "full"))
    parser.add_argument("--out", default="runs/notebooks", help="where the executed copies go (relative to --cwd)")
    parser.add_argument("--cwd", default=str(REPO_ROOT), help="working directory of the kernels")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)

    cwd = pathlib.Path(args.cwd).resolve()
    out = cwd / args.out
    out.mkdir(parents=True, exist_ok=True)
    failed, times = [], {}
    for path in notebook_paths(args.notebooks):
        print(f"{path.name} ({args.budget} budget) ...", flush=True)
        start = time.monotonic()
        try:
            executed = execute_notebook(path, budget=args.budget, cwd=cwd, timeout=args.timeout)
        except CellExecutionError as error:
            failed.append(path.name)
            print(f"{path.name} FAILED:\n{error}", file=sys.stderr, flush=True)
            continue
        finally:
            times[path.name] = time.monotonic() - start
        target = out / (path.name if args.budget == "full" else f"{path.stem}-{args.budget}.ipynb")
        nbformat.write(executed, str(target))
        print(f"{path.name}: {times[path.name]:.1f} s -> {target}", flush=True)
    print("wall time per notebook: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
