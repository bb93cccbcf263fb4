"""A Dense layer's weight gradient on this device: XLA's x^T @ g vs dense_product's (g^T @ x)^T.

Prints milliseconds per gradient (32 in one jitted loop, interleaved runs, fastest of 10) for
rows x in x out shapes met in our learners, and which form `dense_product` picks for each.
Run: python benchmarks/dense_weight_grad.py
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.common import device_description, markdown_table, time_interleaved  # noqa: E402
from jaxrl_suite.xla_cpu import dense_product  # noqa: E402

PER_CALL = 32
# (rows, in, out): PPO minibatches on MinAtar/CartPole/DMC, SAC's 256-unit layers, value/policy heads.
SHAPES = [(2048, 400, 64), (2048, 64, 64), (2048, 64, 6), (2048, 64, 1), (2048, 4, 64), (256, 256, 256),
          (256, 17, 256), (256, 256, 1), (512, 400, 128), (2048, 128, 128), (4096, 512, 512)]


def many_gradients(weight_grad):
    """Sums PER_CALL weight gradients of inputs shifted per step (so no step can be hoisted)."""
    def run(x, g):
        def body(step, total):
            return total + weight_grad(x + step * 1e-6, g)
        return jax.lax.fori_loop(0, PER_CALL, body, jnp.zeros((x.shape[1], g.shape[1])))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"device {device_description()}")
    rows = []
    for num_rows, in_features, out_features in SHAPES:
        x_key, g_key = jax.random.split(jax.random.PRNGKey(0))
        x = jax.random.normal(x_key, (num_rows, in_features))
        g = jax.random.normal(g_key, (num_rows, out_features))
        plain, transposed = time_interleaved(
            [(many_gradients(dense_product.plain_weight_grad), (x, g)),
             (many_gradients(dense_product.transposed_weight_grad), (x, g))], args.repeats)
        picked = "transposed" if dense_product.transposed_weight_grad_pays(in_features, out_features) else "plain"
        rows.append([f"{num_rows} x {in_features} x {out_features}", f"{plain.run_s / PER_CALL * 1e3:.3f}",
                     f"{transposed.run_s / PER_CALL * 1e3:.3f}", f"{plain.run_s / transposed.run_s:.2f}", picked])
    print(markdown_table(["rows x in x out", "x^T @ g ms", "(g^T @ x)^T ms", "speed ratio", "picked on CPU"], rows))


if __name__ == "__main__":
    main()
