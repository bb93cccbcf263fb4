"""Forgetting Attention (FoX, arXiv 2503.02130) and ACP (arXiv 2504.06949): time, memory, skipped work.

Times forward and forward+backward of every implementation against jax.nn.dot_product_attention
(causal, no gate), and reports how much ACP skips for realistic synthetic gates.

    .venv/bin/python benchmarks/forgetting_attention.py --seq-lens 512 1024 2048 4096
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jaxrl_suite.ops import acp_stats, forgetting_attention  # noqa: E402
from jaxrl_suite.ops.forgetting_attention import DEFAULT_BLOCKS  # noqa: E402

ON_GPU = jax.default_backend() == "gpu"
# name -> (forgetting_attention impl or dot_product_attention implementation, uses ACP)
VARIANTS = {
    "reference": ("reference", False),
    "xla": ("xla", False),
    "xla+acp": ("xla", True),
    "pallas": ("pallas", False),
    "pallas+acp": ("pallas", True),
    "dpa-xla": ("dpa:xla", False),
    "dpa-cudnn": ("dpa:cudnn", False),
}
DEFAULT_VARIANTS = (
    ["reference", "xla", "xla+acp", "pallas", "pallas+acp", "dpa-cudnn"]
    if ON_GPU
    else ["reference", "xla", "xla+acp", "dpa-xla"]
)
# Longest sequence per variant by default: the dense ones hold [heads, seq, seq] arrays.
DEFAULT_MAX_LEN = {
    "reference": 4096 if not ON_GPU else 8192,
    "dpa-xla": 4096,
    "pallas": 16384,
    "pallas+acp": 16384,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=sorted(VARIANTS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=None, help="default: --heads")
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument(
        "--dtype", default="bfloat16" if ON_GPU else "float32", choices=["float32", "bfloat16", "float16"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stat", choices=["min", "median"], default="median" if ON_GPU else "min")
    parser.add_argument("--acp-eps", type=float, default=math.exp(-10))
    parser.add_argument("--block-q", type=int, default=None)
    parser.add_argument("--block-k", type=int, default=None)
    parser.add_argument("--block-q-bwd", type=int, default=None)
    parser.add_argument("--block-k-bwd", type=int, default=None)
    parser.add_argument("--num-warps", type=int, default=None, help="Pallas kernels' Triton warps")
    parser.add_argument("--num-stages", type=int, default=None, help="Pallas kernels' Triton pipeline stages")
    parser.add_argument(
        "--max-len", nargs="*", default=[], metavar="VARIANT=LEN", help="override per-variant longest T"
    )
    parser.add_argument("--fwd-only", action="store_true")
    parser.add_argument("--acp-only", action="store_true", help="only the ACP skipped-fraction table")
    parser.add_argument("--no-acp-table", action="store_true", help="skip the ACP skipped-fraction table")
    parser.add_argument("--json", type=Path, default=None, help="also write all rows here")
    return parser.parse_args(argv)


def synthetic_inputs(args, seq_len, qk_norm=True, seed=0):
    """q, k, v and FoX-like gates: per-head forget timescales log-spaced in [4, seq_len].

    The gate logit of head h is the fixed-bias init b_h = -log(expm1(1 / tau_h)) (so f = exp(-1/tau_h))
    plus N(0, 1) noise per token; with qk_norm, q and k rows have norm sqrt(head_dim) as after QK-RMSNorm.
    """
    kv_heads = args.kv_heads or args.heads
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    shape_q = (args.batch, seq_len, args.heads, args.head_dim)
    shape_kv = (args.batch, seq_len, kv_heads, args.head_dim)
    q = jax.random.normal(keys[0], shape_q, jnp.float32)
    k = jax.random.normal(keys[1], shape_kv, jnp.float32)
    if qk_norm:
        q = q * jax.lax.rsqrt(jnp.mean(q * q, axis=-1, keepdims=True))
        k = k * jax.lax.rsqrt(jnp.mean(k * k, axis=-1, keepdims=True))
    v = jax.random.normal(keys[2], shape_kv, jnp.float32)
    timescales = jnp.geomspace(4.0, float(seq_len), args.heads)
    bias = -jnp.log(jnp.expm1(1.0 / timescales))
    logits = bias + jax.random.normal(keys[3], (args.batch, seq_len, args.heads))
    dtype = jnp.dtype(args.dtype)
    return q.astype(dtype), k.astype(dtype), v.astype(dtype), jax.nn.log_sigmoid(logits)


def make_fn(variant, args):
    impl, use_acp = VARIANTS[variant]
    if impl.startswith("dpa:"):
        implementation = impl.split(":")[1]

        def attend(q, k, v, log_fgate):
            del log_fgate
            return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation=implementation)

        return attend
    options = {"impl": impl, "acp_eps": args.acp_eps if use_acp else None}
    if impl != "reference":
        options.update(block_q=args.block_q, block_k=args.block_k)
    if impl == "pallas":
        options.update(block_q_bwd=args.block_q_bwd, block_k_bwd=args.block_k_bwd)
        options.update(num_warps=args.num_warps, num_stages=args.num_stages)

    def attend(q, k, v, log_fgate):
        return forgetting_attention(q, k, v, log_fgate, **options)

    return attend


def peak_bytes(compiled):
    """Bytes XLA plans to hold at once: arguments, outputs and temporaries of the program."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return float("nan")
    return (
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )


def time_program(fn, inputs, repeats, stat):
    """(compiled program, wall seconds, process CPU seconds) of jit(fn) on inputs, after one
    warm-up call. Wall time is the median of the repeats or their minimum (the run least
    disturbed by other load); CPU time, summed over this process's threads, is the minimum and
    is the steadier measure of work on a shared CPU."""
    compiled = jax.jit(fn).lower(*inputs).compile()
    jax.block_until_ready(compiled(*inputs))
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(compiled(*inputs))
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return compiled, (min if stat == "min" else statistics.median)(wall), min(cpu)


def bench_one(variant, args, seq_len, inputs):
    attend = make_fn(variant, args)
    d_out = jnp.ones(inputs[0].shape, inputs[0].dtype)

    def forward_backward(q, k, v, log_fgate):
        out, vjp = jax.vjp(attend, q, k, v, log_fgate)
        return vjp(d_out)

    flops_fwd = 2.0 * args.batch * args.heads * seq_len**2 * args.head_dim  # causal: half of 4 B H T^2 d
    row = {"variant": variant, "seq_len": seq_len}
    _, row["fwd_s"], row["fwd_cpu_s"] = time_program(attend, inputs, args.repeats, args.stat)
    row["fwd_tflops"] = flops_fwd / row["fwd_s"] / 1e12
    if not args.fwd_only:
        compiled, row["fwdbwd_s"], row["fwdbwd_cpu_s"] = time_program(
            forward_backward, inputs, args.repeats, args.stat
        )
        row["fwdbwd_tflops"] = 3.5 * flops_fwd / row["fwdbwd_s"] / 1e12
        row["fwdbwd_peak_mib"] = peak_bytes(compiled) / 2**20
    return row


def timing_header():
    unit = "TFLOP/s" if ON_GPU else "GFLOP/s"
    header = ["variant", "T", "fwd ms", "fwd+bwd ms", f"fwd {unit}", f"fwd+bwd {unit}"]
    if not ON_GPU:
        header += ["fwd CPU s", "fwd+bwd CPU s"]
    return header + ["fwd+bwd peak MiB"]


def timing_cells(row):
    """One table row; FLOP rates count the dense causal work, so ACP shows as a higher rate."""
    factor = 1.0 if ON_GPU else 1e3

    def cell(key, scale, digits):
        return f"{row[key] * scale:.{digits}f}" if key in row else "-"

    cells = [row["variant"], str(row["seq_len"]), cell("fwd_s", 1e3, 1), cell("fwdbwd_s", 1e3, 1)]
    cells += [cell("fwd_tflops", factor, 1), cell("fwdbwd_tflops", factor, 1)]
    if not ON_GPU:
        cells += [cell("fwd_cpu_s", 1.0, 3), cell("fwdbwd_cpu_s", 1.0, 3)]
    return cells + [cell("fwdbwd_peak_mib", 1.0, 0)]


def acp_table(args):
    rows = []
    impl = "pallas" if ON_GPU else "xla"
    block_q, block_k = args.block_q or DEFAULT_BLOCKS[impl][0], args.block_k or DEFAULT_BLOCKS[impl][1]
    stats_fn = jax.jit(acp_stats, static_argnames=("acp_eps", "block_q", "block_k"))
    for seq_len in args.seq_lens:
        for qk_norm in (True, False):
            q, k, _, log_fgate = synthetic_inputs(args, seq_len, qk_norm=qk_norm)
            stats = stats_fn(
                q,
                k,
                log_fgate,
                acp_eps=args.acp_eps,
                block_q=min(block_q, seq_len),
                block_k=min(block_k, seq_len),
            )
            rows.append({
                "seq_len": seq_len, "qk_norm": qk_norm, "block": f"{block_q}x{block_k}",
                "tile_fraction_skipped": float(stats.tile_fraction_skipped),
                "flop_fraction_skipped": float(stats.flop_fraction_skipped),
                "mass_bound": float(stats.mass_bound),
            })  # fmt: skip
            r = rows[-1]
            print(
                f"| {seq_len} | {'yes' if qk_norm else 'no'} | {r['block']} | {r['tile_fraction_skipped']:.3f} "
                f"| {r['flop_fraction_skipped']:.3f} | {r['mass_bound']:.2e} |",
                flush=True,
            )
    return rows


def main(argv=None):
    args = parse_args(argv)
    max_len = dict(DEFAULT_MAX_LEN)
    for item in args.max_len:
        name, value = item.split("=")
        max_len[name] = int(value)
    device = jax.devices()[0]
    print(f"# device: {device.device_kind} ({jax.default_backend()}), jax {jax.__version__}")
    print(
        f"# batch={args.batch} heads={args.heads} kv_heads={args.kv_heads or args.heads} head_dim={args.head_dim} "
        f"dtype={args.dtype} acp_eps={args.acp_eps:.3g} repeats={args.repeats} ({args.stat})"
    )
    results = {"acp": [], "timing": []}
    if not args.no_acp_table:
        print("\n## ACP on synthetic FoX gates (tau log-spaced in [4, T] over heads)\n")
        print(
            "| T | QK-norm | block | tiles skipped | FLOPs skipped | mass bound |\n|---|---|---|---|---|---|"
        )
        results["acp"] = acp_table(args)
    if not args.acp_only:
        header = timing_header()
        print(f"\n## Timing\n\n| {' | '.join(header)} |\n|{'---|' * len(header)}")
        for seq_len in args.seq_lens:
            inputs = synthetic_inputs(args, seq_len)
            for variant in args.variants:
                if seq_len > max_len.get(variant, 32768):
                    continue
                try:
                    row = bench_one(variant, args, seq_len, inputs)
                except Exception as error:  # noqa: BLE001 - a failing variant must not stop the sweep
                    print(
                        f"| {variant} | {seq_len} | failed: {type(error).__name__}: {str(error)[:200]} |",
                        flush=True,
                    )
                    continue
                results["timing"].append(row)
                print(f"| {' | '.join(timing_cells(row))} |", flush=True)
    if not ON_GPU:
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
        print(f"\n# process peak RSS: {peak_rss:.0f} MiB (whole run, all variants)")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return results


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
