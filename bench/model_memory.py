"""Memory per loaded model, load and unload times, and RSS after repeated load/unload cycles.

The cycles run as in a worker: the first model stays loaded (the default) while the others are
loaded and unloaded; the RSS after them is compared with the RSS before the first cycle. The
allocator is tuned around loads as in a worker (`WHISPER_API_MALLOC_MMAP_KB`; 0: glibc's own).

`python -m bench.model_memory [--cycles 20]` runs in one fresh process, as a worker would: the
registry and the configured engine (faster-whisper on CPU by default), real packaged weights.
Prints one JSON object. RSS is read from /proc; the machine's load is printed with it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from dataclasses import replace

from whisper_api.config import Settings
from whisper_api.engine.memory import operator_tuned
from whisper_api.engine.registry import ModelRegistry
from whisper_api.server_process import rss_bytes

MIB = 1 << 20


def rss_mb() -> float:
    gc.collect()
    return rss_bytes(os.getpid()) / MIB


def measure(models: list[str], cycles: int) -> dict[str, object]:
    settings = Settings.from_env()
    settings = replace(settings, model=models[0], extra_models=tuple(models), device="cpu",
                       pin_default_model=False, max_loaded_models=len(models))  # fmt: skip
    registry = ModelRegistry(settings)
    for name in models:
        registry.locate(name)  # packaged models assembled once, outside the timings
    import faster_whisper  # noqa: F401 - the engine's import is not a model's memory

    start = rss_mb()
    per_model = {}
    for name in models:
        before = rss_mb()
        began = time.perf_counter()
        registry.get(name)
        loaded = time.perf_counter() - began
        after = rss_mb()
        estimate = next(s.ram_mb for s in registry.states() if s.name == name)
        began = time.perf_counter()
        registry.unload(name)
        unloaded = time.perf_counter() - began
        per_model[name] = {
            "rss_delta_mb": round(after - before, 1),
            "estimate_mb": estimate,
            "load_seconds": round(loaded, 2),
            "unload_seconds": round(unloaded, 3),
            "rss_after_unload_mb": round(rss_mb(), 1),
        }
    # A worker keeps its default model (the first) and loads and unloads the others on demand.
    registry.get(models[0])
    worker_start = rss_mb()
    cycle_rss = []
    loads: list[float] = []
    unloads: list[float] = []
    for _ in range(cycles):
        for name in models[1:]:
            began = time.perf_counter()
            registry.get(name)
            loads.append(time.perf_counter() - began)
            registry.unload(name)
            unloads.append(time.perf_counter() - began - loads[-1])
        cycle_rss.append(round(rss_mb(), 1))
    end = rss_mb()
    return {
        "engine": settings.engine,
        "malloc_mmap_threshold_kb": None if operator_tuned() else settings.malloc_mmap_threshold_kb,
        "models": per_model,
        "cycles": cycles,
        "rss_process_start_mb": round(start, 1),
        "rss_worker_start_mb": round(worker_start, 1),
        "rss_after_cycles_mb": round(end, 1),
        "rss_change_percent": round(100 * (end - worker_start) / worker_start, 1),
        "rss_peak_change_percent": round(100 * (max(cycle_rss) - worker_start) / worker_start, 1),
        "rss_per_cycle_mb": cycle_rss,
        "cycle_load_seconds_median": round(statistics.median(loads), 2),
        "cycle_unload_seconds_median": round(statistics.median(unloads), 3),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()
    json.dump(measure(args.models.split(","), args.cycles), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
