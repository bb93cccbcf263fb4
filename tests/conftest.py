"""Shared pytest fixtures and settings for the jaxrl_suite test suite.

Tests run on CPU; slow learning/scale tests are marked `slow` and excluded by default.
"""

import importlib.util
import os
import pathlib
import sys

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# XLA:CPU's multi-threaded Eigen pool can wedge when pytest-xdist workers share two cores.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()


def cpu_devices_env(count: int) -> dict[str, str]:
    """This process's environment for a child JAX process that sees `count` CPU devices."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"
    return dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")


def load_experiment(name: str):
    """Imports experiments/<name>.py as a module (registered in sys.modules, where dataclasses
    look their module up); a generator for module-scoped fixtures, unregistered afterwards."""
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def assert_one_line_error(call, pieces) -> None:
    """`call()` raises a one-line ValueError that contains every one of `pieces`."""
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message
    for piece in pieces:
        assert piece in message, message
