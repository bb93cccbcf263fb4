"""Minibatch shuffles: jax.random.permutation vs jaxrl_suite.xla_cpu.shuffle.permutation.

Prints milliseconds per permutation (100 in one jitted scan, fastest of 5 runs) for each size.
Run: python benchmarks/shuffle.py [--sizes 2048 8192 65536]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.common import device_description, markdown_table, time_jitted  # noqa: E402
from jaxrl_suite.xla_cpu import shuffle  # noqa: E402

PER_CALL = 100


def ms_per_permutation(permute, n: int) -> float:
    def many(key):
        keys = jax.random.split(key, PER_CALL)
        return jax.lax.scan(lambda total, k: (total + permute(k, n)[0], None), jnp.zeros((), jnp.int32), keys)[0]

    return time_jitted(many, jax.random.PRNGKey(0), repeats=5).run_s / PER_CALL * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192, 65536])
    args = parser.parse_args()
    print(f"device {device_description()}")
    rows = []
    for n in args.sizes:
        theirs = ms_per_permutation(jax.random.permutation, n)
        ours = ms_per_permutation(shuffle.permutation, n)
        rows.append([f"{n:,}", f"{theirs:.3f}", f"{ours:.3f}", f"{theirs / ours:.1f}"])
    print(markdown_table(["items", "jax.random.permutation ms", "shuffle.permutation ms", "speed ratio"], rows))


if __name__ == "__main__":
    main()
