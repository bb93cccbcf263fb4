"""What machine and software produced a result: library versions, JAX backend and device
kind, CPU model and XLA flags, recorded in every config.json and every study result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "chex", "orbax-checkpoint", "brax", "mujoco-mjx", "gymnax")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str | None]:
    """Installed version of each library in LIBRARIES (None where it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info() -> dict[str, Any]:
    """{versions, backend, device_kind, device_count, cpu_model, cpu_count, xla_flags, python}."""
    import jax

    device = jax.devices()[0]
    return {
        "versions": library_versions(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "python": platform.python_version(),
    }


def describe_machine(info: dict[str, Any] | None = None) -> str:
    """One line, e.g. `cpu (AMD EPYC 7B13, 2 cores), jax 0.7.0, XLA_FLAGS=...`."""
    info = machine_info() if info is None else info
    where = info["cpu_model"] if info["backend"] == "cpu" else f"{info['device_kind']} x{info['device_count']}"
    text = f"{info['backend']} ({where}, {info['cpu_count']} cores), jax {info['versions']['jax']}"
    return text + (f", XLA_FLAGS={info['xla_flags']}" if info["xla_flags"] else "")
