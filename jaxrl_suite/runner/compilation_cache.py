"""JAX's persistent compilation cache for the `jaxrl` command and the studies.

A rerun, a resumed run or a study's next setting loads the programs it compiled before from disk.
"""

from __future__ import annotations

import os

import jax

COMPILATION_CACHE = "~/.cache/jaxrl_suite/xla"
DISABLE_VARIABLE = "JAXRL_COMPILATION_CACHE"  # "off" (or 0/false/no) leaves the cache off


def cache_disabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "").strip().lower() in ("off", "0", "false", "no")


def use_compilation_cache(directory: str = COMPILATION_CACHE) -> str:
    """Turns on JAX's persistent compilation cache (in $JAX_COMPILATION_CACHE_DIR when set, else
    `directory`) and returns its path. A study compiles many programs that are alike: settings that
    share the evaluation program, variants that share init, reruns and resumed runs; those load
    from the cache instead of compiling again. Cached programs compute the same numbers.
    With $JAXRL_COMPILATION_CACHE=off it changes nothing and returns ""."""
    if cache_disabled():
        return ""
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))
    print(f"compiled programs are cached in {jax.config.jax_compilation_cache_dir} "
          f"(JAX_COMPILATION_CACHE_DIR moves it, {DISABLE_VARIABLE}=off turns it off)", flush=True)
    return jax.config.jax_compilation_cache_dir
