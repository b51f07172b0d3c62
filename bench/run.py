"""Run a benchmark plan: every configuration over HTTP, the engine directly, and the baseline."""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import openai
import psutil

from bench import client as sdk
from bench.clips import Clip, build_clips, held_out_clip, short_clip, silent_flac
from bench.configs import STREAM_CLIP, Plan, ServerConfig
from bench.coverage import check_coverage
from bench.server import BenchServer, RssSampler, peak_rss_bytes, reset_peak_rss
from bench.wer import word_error_rate
from whisper_api.config import Settings
from whisper_api.server_process import ROOT

logger = logging.getLogger(__name__)

MIB = 1024 * 1024


def machine() -> dict[str, Any]:
    """What the figures came from."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(line.split()[1]) * 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration):
        mem = 0
    versions = {}
    for package in ("faster-whisper", "ctranslate2", "openai-whisper", "torch", "gunicorn", "openai"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 1024**3, 1),
        "system": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "load_average_start": list(os.getloadavg()),
    }


def _subprocess_json(module: str, request: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run `python -m module request.json` from the repository root and parse its JSON."""
    path = work / f"{module.rsplit('.', 1)[-1]}-request.json"
    path.write_text(json.dumps(request))
    done = subprocess.run(
        [sys.executable, "-m", module, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def _scored(clip: Clip, segments: list[list[Any]]) -> sdk.Result:
    return sdk._result(clip, [(float(start), float(end), text) for start, end, text in segments], 0.0)


def coverage(clip: Clip, segments: tuple[tuple[float, float, str], ...]) -> dict[str, Any] | None:
    """Dropped, repeated and invented passages (None for a clip whose speech is not mapped)."""
    if not clip.passages:
        return None
    return check_coverage(clip.passages, segments, clip.duration).summary()


def _file_figures(clip: Clip, seconds: list[float], segments: list[list[Any]]) -> dict[str, Any]:
    median = statistics.median(seconds)
    result = _scored(clip, segments)
    return {
        "seconds": median,
        "runs": seconds,
        "rtf": clip.duration / median,
        "wer": word_error_rate(clip.reference, result.scored),
        "tail_words": result.tail_words if clip.scored_until is not None else None,
        "coverage": coverage(clip, result.segments),
        "text": result.scored,
    }


def run_baseline(plan: Plan, clips: dict[str, Clip], work: Path) -> dict[str, Any]:
    """openai-whisper's `transcribe()` on the same weights and files."""
    request = {
        "model": plan.baseline_model,
        "repeats": plan.repeats,
        "files": [{"name": n, "path": str(clips[n].path)} for n in plan.baseline_clips if n in clips],
    }
    logger.info("baseline: openai-whisper %s on %s", plan.baseline_model, ", ".join(plan.baseline_clips))
    raw = _subprocess_json("bench.baseline", request, work)
    return {
        "engine": raw["engine"],
        "model": plan.baseline_model,
        "torch": raw["torch"],
        "threads": raw["threads"],
        "load_seconds": raw["load_seconds"],
        "peak_rss_mib": (raw["peak_rss_bytes"] or 0) / MIB,
        "files": {
            f["name"]: _file_figures(clips[f["name"]], f["seconds"], f["segments"]) for f in raw["files"]
        },
    }


def run_direct(config: ServerConfig, clips: dict[str, Clip], repeats: int, work: Path) -> dict[str, Any]:
    request = {
        "config": config.name,
        "environment": config.environment(),
        "repeats": repeats,
        "files": [{"name": n, "path": str(clips[n].path)} for n in config.clips if n in config.direct_clips],
    }
    raw = _subprocess_json("bench.direct", request, work)
    return {
        "load_seconds": raw["load_seconds"],
        "peak_rss_mib": (raw["peak_rss_bytes"] or 0) / MIB,
        "files": {
            f["name"]: _file_figures(clips[f["name"]], f["seconds"], f["segments"]) for f in raw["files"]
        },
    }


def run_server(config: ServerConfig, clips: dict[str, Clip], plan: Plan, work: Path) -> dict[str, Any]:
    """Everything measured over HTTP through the OpenAI SDK for one configuration."""
    server = BenchServer(config.environment(), work / f"server-{config.name}.log", config.effective().workers)
    with server:
        workers = server.worker_processes()
        phases = _PhasePeaks(workers)
        phases.close("load")  # the model load: the peak up to now
        figures: dict[str, Any] = {
            "ready_seconds": server.ready_seconds,
            "load_seconds": server.load_seconds(),
        }
        client = sdk.make_client(server.base_url)
        with RssSampler(workers) as sampler:
            single = {}
            for name in (n for n in config.clips if n in clips):
                clip = clips[name]
                data = clip.path.read_bytes()
                results = [sdk.transcribe(client, config.model, clip, data) for _ in range(plan.repeats)]
                single[name] = {
                    "seconds": statistics.median(r.seconds for r in results),
                    "runs": [r.seconds for r in results],
                    "rtf": clip.duration / statistics.median(r.seconds for r in results),
                    "wer": word_error_rate(clip.reference, results[0].scored),
                    "tail_words": results[0].tail_words if clip.scored_until is not None else None,
                    "coverage": coverage(clip, results[0].segments),
                    "text": results[0].scored,
                    "peak_rss_mib_per_worker": phases.close(f"single:{name}"),
                }
            figures["single"] = single
            figures["memory"] = _memory_by_length(client, config, phases)
            headline = clips[config.clips[0]]
            # issue #17: first text of a 60 s file (the headline clip where the plan has none)
            streamed_clip = clips.get(STREAM_CLIP) or headline
            if config.stream:
                data = streamed_clip.path.read_bytes()
                streamed = sdk.stream(client, config.model, streamed_clip, data)
                figures["stream"] = {
                    "clip": streamed_clip.name,
                    "first_delta_seconds": streamed.first_delta_seconds,
                    "total_seconds": streamed.total_seconds,
                    "deltas": streamed.deltas,
                }
                phases.close("stream")
            levels = []
            for clients in config.concurrency:
                per_client = max(plan.requests_per_client, 2 if clients == 1 else 1)
                cpu_before = _cpu_seconds(workers)
                level = sdk.load_level(server.base_url, config.model, headline, clients, per_client)
                cpu_used = [b - a for a, b in zip(cpu_before, _cpu_seconds(workers), strict=True)]
                levels.append(
                    {
                        "clip": headline.name,
                        "clients": level.clients,
                        "requests": level.requests,
                        "wall_seconds": level.wall_seconds,
                        "throughput": level.throughput,
                        "p50": level.p50,
                        "p95": level.p95,
                        "wer": statistics.mean(word_error_rate(headline.reference, s) for s in level.scored),
                        "worker_cpu_seconds": cpu_used,
                        # audio seconds per CPU second: efficiency, robust to other load on the machine
                        "audio_per_cpu_second": headline.duration * level.requests / max(sum(cpu_used), 1e-9),
                        "peak_rss_mib_per_worker": phases.close(f"clients:{clients}"),
                    }
                )
            figures["load"] = levels
        figures["peak_rss_mib_per_worker"] = phases.overall(sampler.peaks)
        figures["peak_rss_mib_by_phase"] = phases.by_phase
    return figures


def _memory_by_length(
    client: openai.OpenAI, config: ServerConfig, phases: _PhasePeaks
) -> list[dict[str, Any]]:
    """Peak RSS per worker while silent uploads of growing length are transcribed."""
    rows = []
    for seconds in config.memory_seconds:
        data = silent_flac(seconds)
        began = time.perf_counter()
        response = client.audio.transcriptions.create(
            model=config.model, file=("silence.flac", data), response_format="verbose_json"
        )
        rows.append(
            {
                "audio_seconds": seconds,
                "upload_bytes": len(data),
                "duration": response.duration,
                "seconds": time.perf_counter() - began,
                "peak_rss_mib_per_worker": phases.close(f"silence:{seconds:g}"),
            }
        )
    return rows


class _PhasePeaks:
    """Peak RSS of each worker per phase (model load, each clip, each load level), in MiB."""

    def __init__(self, workers: list[psutil.Process]) -> None:
        self.workers = workers
        self.by_phase: dict[str, list[float | None]] = {}

    def close(self, phase: str) -> list[float | None]:
        """Read the peaks since the last phase ended, then start new ones."""
        peaks = [peak_rss_bytes(p.pid) for p in self.workers]
        self.by_phase[phase] = [None if v is None else v / MIB for v in peaks]
        for p in self.workers:
            reset_peak_rss(p.pid)
        return self.by_phase[phase]

    def overall(self, sampled: dict[int, int]) -> list[float]:
        """Each worker's peak over the whole run (the sampler's where /proc has no high-water mark)."""
        result = []
        for i, p in enumerate(self.workers):
            known = [v[i] for v in self.by_phase.values() if v[i] is not None]
            result.append(max(known) if known else sampled[p.pid] / MIB)
        return result


def _cpu_seconds(processes: list[psutil.Process]) -> list[float]:
    """CPU time each worker has used so far: shows how gunicorn spread the requests."""
    seconds = []
    for process in processes:
        try:
            times = process.cpu_times()
            seconds.append(times.user + times.system)
        except psutil.Error:
            seconds.append(0.0)
    return seconds


def run_plan(
    plan: Plan,
    audio_dir: Path,
    out_dir: Path,
    *,
    only: set[str] | None = None,
    baseline: bool = True,
) -> dict[str, Any]:
    """Run the plan and return every figure (also written to `out_dir`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "plan": plan.name,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="whisper-api-bench-") as tmp:
        work = Path(tmp)
        clips = build_clips(audio_dir, work / "clips", plan.long_seconds, plan.ref71_repeats)
        if plan.use_short_clip:
            clips["short"] = short_clip(audio_dir, work / "clips")
        if plan.held_out:
            spoken = held_out_clip(work / "clips", Settings.from_env().voices_dir)
            if spoken is None:
                logger.warning("no voice installed (requirements-speech.txt): no held-out speech clip")
            else:
                clips[spoken.name] = spoken
        results["clips"] = {
            c.name: {
                "duration": c.duration,
                "scored_until": c.scored_until,
                "reference_words": len(c.reference.split()),
            }
            for c in clips.values()
        }
        results["baseline"] = None
        if baseline:
            try:
                results["baseline"] = run_baseline(plan, clips, work)
            except (RuntimeError, OSError) as exc:
                logger.error("baseline failed: %s", exc)
                results.setdefault("failed", {})["baseline"] = str(exc)[-2000:]
        results["configs"] = []
        for config in plan.configs:
            if only and config.name not in only:
                continue
            logger.info("configuration %s: %s", config.name, config.describe())
            entry: dict[str, Any] = {
                "name": config.name,
                "describe": config.describe(),
                "settings": config.environment(),
                "workers": config.effective().workers,
                "model": config.model,
                "engine": config.engine,
            }
            try:
                entry["direct"] = run_direct(config, clips, plan.repeats, work)
                entry["http"] = run_server(config, clips, plan, work)
            except (RuntimeError, OSError, openai.OpenAIError) as exc:
                # One broken configuration must not cost the figures of all the others.
                logger.error("configuration %s failed: %s", config.name, exc)
                results.setdefault("failed", {})[config.name] = str(exc)[-2000:]
                continue
            _derive(entry, results["baseline"])
            results["configs"].append(entry)
            (out_dir / "partial.json").write_text(json.dumps(results, indent=2))
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["wall_seconds"] = time.perf_counter() - started
    return results


def _derive(entry: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    """Ratios: HTTP over direct (the server's overhead), and speed-up over the baseline."""
    for name, http in entry["http"]["single"].items():
        direct = entry["direct"]["files"].get(name)
        if direct is not None:
            http["overhead"] = http["seconds"] / direct["seconds"] - 1
            http["direct_seconds"] = direct["seconds"]
            http["direct_wer"] = direct["wer"]
        if baseline and name in baseline["files"]:
            http["speedup_vs_baseline"] = baseline["files"][name]["seconds"] / http["seconds"]
            http["baseline_wer"] = baseline["files"][name]["wer"]
            http["baseline_coverage"] = baseline["files"][name].get("coverage")
