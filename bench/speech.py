"""Text to speech on the real server: synthesis speed, time to the first audio byte, memory, and
the word error rate of what it says (transcribed back by the same server's Whisper).

Usage: .venv/bin/python -m bench.speech [--repeats 5] [--model tiny.en]
Starts gunicorn (one worker) on loopback; sends a 300-character text with `stream_format=audio`
(the first byte is timed) and a longer text whose whole answer is timed against its duration.
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

from bench.wer import word_error_rate
from whisper_api.server_process import ROOT, ServerProcess, rss_bytes, worker_pids

#: 300 characters, several sentences, the first one long (it is cut at its comma).
TEXT_300 = (
    "When the committee met on Tuesday morning, the first question was the budget for the new "
    "library. Several members wanted more money for books and fewer for furniture. After a long "
    "discussion, they agreed to spend half on books, a quarter on computers, and the rest on chairs "
    "and tables for the reading room."
)
#: A longer text for the real-time factor (about a minute of speech).
TEXT_LONG = " ".join(
    [
        TEXT_300,
        "The town had waited years for this building, and the architect promised that the doors would "
        "open before the end of the summer.",
        "Children from the local school visited the site every week to watch the walls go up.",
        "On the last visit, the builders let them choose the colour of the front door, and they picked "
        "a bright shade of green.",
        "Everyone agreed that it was the right choice.",
    ]
)


def worker_pid(server: ServerProcess) -> int:
    assert server.process is not None
    return worker_pids(server.process.pid)[0]


def first_byte_and_total(url: str, text: str, fmt: str) -> tuple[float, float, bytes]:
    """Seconds to the first audio byte, to the last, and the body."""
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": fmt}
    started = time.perf_counter()
    first = float("nan")
    data = bytearray()
    with requests.post(url + "/v1/audio/speech", json=body, stream=True, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=None):
            if chunk and not data:
                first = time.perf_counter() - started
            data += chunk
    return first, time.perf_counter() - started, bytes(data)


def transcribe(url: str, wav: bytes) -> str:
    response = requests.post(
        url + "/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("speech.wav", wav)},
        timeout=600,
    )
    response.raise_for_status()
    return response.json()["text"]


def run(repeats: int, model: str) -> dict[str, object]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        # The voice is loaded by the first request here (not at worker start) to measure it alone.
        env = {"WHISPER_MODEL": model, "WHISPER_API_PRELOAD_VOICE": "0"}
        server = ServerProcess(env, Path(tmp) / "server.log").start()
        try:
            url = server.base_url
            worker = worker_pid(server)
            rss_before = rss_bytes(worker)
            load_started = time.perf_counter()
            first_byte_and_total(url, "Hello.", "pcm")  # loads and warms the voice
            voice_load = time.perf_counter() - load_started
            rss_after = rss_bytes(worker)

            ttfb = {fmt: [] for fmt in ("pcm", "mp3")}
            for _ in range(repeats):
                for fmt in ttfb:
                    ttfb[fmt].append(first_byte_and_total(url, TEXT_300, fmt)[0])

            rtfs, wavs = [], []
            for _ in range(max(1, repeats // 2)):
                _, total, pcm = first_byte_and_total(url, TEXT_LONG, "pcm")
                seconds = len(pcm) / 2 / 24000
                rtfs.append(seconds / total)
                wavs.append(first_byte_and_total(url, TEXT_LONG, "wav")[2])
            rss_speech = rss_bytes(worker)  # before Whisper transcribes anything long
            wers = [word_error_rate(TEXT_LONG, transcribe(url, wav)) for wav in wavs]
            rss_peak = rss_bytes(worker)
        finally:
            server.stop()
    return {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": load_before,
                    "load_after": os.getloadavg()},
        "whisper_model": model,
        "voice": "en_US-joe-medium",
        "repeats": repeats,
        "first_byte_s_300_chars": {fmt: {"median": statistics.median(v), "max": max(v), "all": v}
                                   for fmt, v in ttfb.items()},
        "long_text_chars": len(TEXT_LONG),
        "speech_seconds": round(seconds, 2),
        "times_real_time": {"median": statistics.median(rtfs), "all": rtfs},
        "wer_round_trip": {"median": statistics.median(wers), "all": wers},
        "voice_load_s": voice_load,
        "worker_rss_mib": {"before_voice": rss_before / 2**20, "with_voice": rss_after / 2**20,
                           "after_speaking": rss_speech / 2**20, "after_transcribing": rss_peak / 2**20},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speech", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="tiny.en", help="Whisper model that transcribes it back")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    result = run(args.repeats, args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"speech-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))  # noqa: T201 - a command-line report
    print(f"JSON: {path}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
