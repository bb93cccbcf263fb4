"""Compile time of a language-model preset with looped blocks (params['block_i']) and scanned blocks (stacked).

Times jit(init).lower(...).compile() and the train step's compile on abstract inputs, and prints scanned/looped.
    python benchmarks/lm_compile_time.py [--preset fox-125m] [--sequence-length 256] [--batch-size 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jaxrl_suite.lm.train import TrainConfig, init_train_state, make_train_step  # noqa: E402
from jaxrl_suite.models import LanguageModel, ModelConfig, count_parameters, model_config  # noqa: E402


def seconds_to_compile(fn, *args) -> float:
    start = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - start


def compile_times(model: ModelConfig, sequence_length: int, batch_size: int) -> dict[str, float]:
    """Seconds to compile the parameter init (as `init_params` builds it) and one AdamW train step."""
    tokens = jax.ShapeDtypeStruct((batch_size, sequence_length), jnp.int32)
    shape_only = dataclasses.replace(model, attention_impl="reference", attention_block_size=0)
    init_s = seconds_to_compile(LanguageModel(shape_only).init, jax.random.PRNGKey(0), tokens)
    train = TrainConfig(sequence_length=sequence_length, batch_size=batch_size, steps=10, warmup_steps=1)
    state = jax.eval_shape(lambda: init_train_state(train, model))
    batch = jax.ShapeDtypeStruct((batch_size, sequence_length + 1), jnp.int32)
    return {"init_s": init_s, "train_step_s": seconds_to_compile(make_train_step(train, model), state, batch)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fox-125m")
    parser.add_argument("--sequence-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args()
    scanned = model_config(args.preset)
    looped = dataclasses.replace(scanned, scan_layers=False)
    shapes = jax.eval_shape(LanguageModel(scanned).init, jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))
    print(f"{args.preset}: {count_parameters(shapes['params']) / 1e6:.1f}M params, {scanned.num_layers} layers, "
          f"batch {args.batch_size} x {args.sequence_length}, {jax.devices()[0].device_kind}, jax {jax.__version__}")
    times = {}
    for name, model in (("looped", looped), ("scanned", scanned)):
        times[name] = compile_times(model, args.sequence_length, args.batch_size)
        print(f"  {name:8s} init compile {times[name]['init_s']:7.1f} s   "
              f"train-step compile {times[name]['train_step_s']:7.1f} s", flush=True)
    for key in ("init_s", "train_step_s"):
        print(f"  {key[:-2]}: scanned / looped = {times['scanned'][key] / times['looped'][key]:.3f}")


if __name__ == "__main__":
    main()
