"""Time to the first `transcript.text.delta` versus time to the whole non-streaming response.

Usage: .venv/bin/python -m bench.streaming_latency [--models tiny.en base] [--repeats 3] [--clip-times 1]
       [--batch-windows 0 4]
Starts the real server (gunicorn, one worker) per model on loopback and sends the 60 s clip
`multilingual.mp3` to /v1/audio/transcriptions, alternating streaming and non-streaming requests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import requests

from whisper_api.server_process import ROOT, ServerProcess

AUDIO = Path(os.environ.get("WHISPER_API_TEST_AUDIO", ROOT.parent / "shared" / "audio")) / "multilingual.mp3"


def time_stream(url: str, data: bytes) -> tuple[float, float]:
    """Seconds to the first delta and to the done event."""
    started = time.perf_counter()
    first = done = float("nan")
    with requests.post(
        url,
        data={"model": "whisper-1", "stream": "true"},
        files={"file": ("clip.mp3", data)},
        stream=True,
        timeout=600,
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines(chunk_size=None):
            if not line.startswith(b"data: {"):
                continue
            event = json.loads(line[6:])
            if event["type"] == "transcript.text.delta" and first != first:
                first = time.perf_counter() - started
            if event["type"] == "transcript.text.done":
                done = time.perf_counter() - started
    return first, done


def time_whole(url: str, data: bytes) -> float:
    started = time.perf_counter()
    files = {"file": ("clip.mp3", data)}
    response = requests.post(url, data={"model": "whisper-1"}, files=files, timeout=600)
    response.raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clip-times", type=int, default=1, help="play the clip this many times (WAV)")
    parser.add_argument(
        "--batch-windows",
        type=int,
        nargs="+",
        default=[0],
        help="WHISPER_API_BATCH_WINDOWS values to compare",
    )
    args = parser.parse_args()
    data = AUDIO.read_bytes()
    if args.clip_times > 1:
        import io

        import numpy as np

        from bench.clips import write_wav
        from whisper_api.engine.audio import decode_audio

        buffer = io.BytesIO()
        write_wav(buffer, np.tile(decode_audio(data).samples, args.clip_times))
        data = buffer.getvalue()
    rows = []
    for model, batch in ((m, b) for m in args.models for b in args.batch_windows):
        log = Path(tempfile.mkdtemp(prefix="bench-stream-")) / "server.log"
        env = {"WHISPER_MODEL": model, "WHISPER_API_BATCH_WINDOWS": str(batch)}
        server = ServerProcess(env, log).start()
        try:
            url = server.base_url + "/v1/audio/transcriptions"
            time_whole(url, data)  # warm-up
            firsts, dones, wholes = [], [], []
            for _ in range(args.repeats):
                first, done = time_stream(url, data)
                firsts.append(first)
                dones.append(done)
                wholes.append(time_whole(url, data))
        finally:
            server.stop()
        name = f"{model}, batch {batch}" if batch > 1 else model
        rows.append((name, statistics.median(firsts), statistics.median(dones), statistics.median(wholes)))
    machine = f"{os.cpu_count()} CPU cores, {platform.machine()}"
    clip = f"{60 * args.clip_times} s clip ({AUDIO.name} x{args.clip_times})"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{clip}, {machine}, median of {args.repeats}, server defaults, load {load}")  # noqa: T201
    print("| model | first delta (stream) | done event (stream) | whole response (no stream) |")  # noqa: T201
    print("| --- | --- | --- | --- |")  # noqa: T201
    for model, first, done, whole in rows:
        print(f"| {model} | {first:.2f} s | {done:.2f} s | {whole:.2f} s |")  # noqa: T201


if __name__ == "__main__":
    main()
