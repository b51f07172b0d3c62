"""Speed, words and worker memory of the real server with each allocator setting.

`python -m bench.allocator [--rounds 5] [--thresholds 256,0]` starts one server per value of
`WHISPER_API_MALLOC_MMAP_KB` (0: glibc's own adaptive threshold), all with the server's defaults
otherwise (one worker, base), and sends jfk and ref71 to each in turn, round after round, so that the
machine's load falls on all of them alike. Prints one JSON object: median and fastest seconds per
clip, the worker's CPU seconds per request (steadier than wall time on a busy machine), word error
rate, the worker's RSS after the requests and its peak.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

from bench import client as sdk
from bench.clips import build_clips
from bench.server import peak_rss_bytes
from bench.wer import word_error_rate
from whisper_api.server_process import ROOT, ServerProcess, rss_bytes, worker_pids

MIB = 1 << 20
CLIPS = ("jfk", "ref71")


def measure(thresholds: list[int], rounds: int, audio_dir: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-allocator-") as work:
        clips = build_clips(audio_dir, Path(work), long_seconds=())
        data = {name: clips[name].path.read_bytes() for name in CLIPS}
        servers = {}
        try:
            for kb in thresholds:
                env = {"WHISPER_API_MALLOC_MMAP_KB": str(kb), "WHISPER_API_OFFLINE": "1"}
                servers[kb] = ServerProcess(env, Path(work) / f"server-{kb}.log").start()
            results: dict[int, dict[str, list[sdk.Result]]] = {kb: {c: [] for c in CLIPS} for kb in servers}
            cpu: dict[int, dict[str, list[float]]] = {kb: {c: [] for c in CLIPS} for kb in servers}
            for _ in range(rounds):
                for kb, server in servers.items():
                    client = sdk.make_client(server.base_url)
                    worker = psutil.Process(worker_pids(server.process.pid)[0])
                    for name in CLIPS:
                        before = sum(worker.cpu_times()[:2])
                        results[kb][name].append(sdk.transcribe(client, "whisper-1", clips[name], data[name]))
                        cpu[kb][name].append(sum(worker.cpu_times()[:2]) - before)
            report = {}
            for kb, server in servers.items():
                worker = worker_pids(server.process.pid)[0]
                report[str(kb)] = {
                    **{c: _figures(clips[c].reference, results[kb][c], cpu[kb][c]) for c in CLIPS},
                    "worker_rss_mb": round(rss_bytes(worker) / MIB, 1),
                    "worker_peak_rss_mb": round((peak_rss_bytes(worker) or 0) / MIB, 1),
                }
        finally:
            for server in servers.values():
                server.stop()
    return {"rounds": rounds, "by_mmap_threshold_kb": report, "load_average": os.getloadavg(),
            "cpus": os.cpu_count()}  # fmt: skip


def _figures(reference: str, runs: list[sdk.Result], cpu: list[float]) -> dict[str, object]:
    return {
        "median_seconds": round(statistics.median(r.seconds for r in runs), 3),
        "fastest_seconds": round(min(r.seconds for r in runs), 3),
        # the worker's CPU time (user + system) for the request: less at the mercy of the load
        "median_cpu_seconds": round(statistics.median(cpu), 3),
        "wer": sorted({round(word_error_rate(reference, r.scored), 4) for r in runs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--thresholds", default="256,0", help="WHISPER_API_MALLOC_MMAP_KB values")
    parser.add_argument("--audio-dir", type=Path, default=ROOT.parent / "shared" / "audio")
    args = parser.parse_args()
    thresholds = [int(kb) for kb in args.thresholds.split(",")]
    json.dump(measure(thresholds, args.rounds, args.audio_dir), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
