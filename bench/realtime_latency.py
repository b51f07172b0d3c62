"""Realtime transcription latency: 1 and 4 sessions streaming speech paced as it is spoken.

Usage: .venv/bin/python -m bench.realtime_latency [--model base] [--sessions 1 4] [--rounds 2] [--show]
Starts the real server (gunicorn, one worker, 8 threads) twice, the baseline first
(WHISPER_API_REALTIME_QUICK_DECODE=0: each utterance a full 30 s window once committed) unless
`--no-baseline`, then with the quick road (encoded at its own length, decoded from the pause).
Each run streams `jfk.flac` (`--rounds` times, each followed by 1.5 s of silence) per session
through the official Python SDK with server VAD (OpenAI's defaults: threshold 0.5, 300 ms
padding, 500 ms silence). Per utterance it measures the time from the end of speech (the moment
the client had sent the audio up to `audio_end_ms`) and from `speech_stopped` (the server's
commit, 500 ms of silence later) to the first delta and to `completed`; the worker's CPU time per
second of audio; and the word error rate of each session's joined transcript against the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
import psutil

from bench.clips import JFK_TEXT
from bench.live import pcm16, send_paced, silence
from bench.wer import word_error_rate
from whisper_api.server_process import ROOT, ServerProcess, worker_pids

AUDIO = Path(os.environ.get("WHISPER_API_TEST_AUDIO", ROOT.parent / "shared" / "audio")) / "jfk.flac"


async def one_session(url: str, pcm: bytes, rounds: int) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-local", max_retries=0)
    stopped: dict[str, float] = {}
    speech_end: dict[str, float] = {}
    first: dict[str, float] = {}
    done: dict[str, float] = {}
    texts: list[str] = []
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(
            session={"type": "transcription", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
        )
        started = time.perf_counter()
        sender = asyncio.create_task(
            send_paced(lambda a: conn.input_audio_buffer.append(audio=a), (pcm + silence(1.5)) * rounds)
        )
        async for event in conn:
            now = time.perf_counter()
            if event.type == "input_audio_buffer.speech_stopped":
                stopped[event.item_id] = now
                speech_end[event.item_id] = started + event.audio_end_ms / 1000
            elif event.type.endswith("input_audio_transcription.delta"):
                first.setdefault(event.item_id, now)
            elif event.type.endswith("input_audio_transcription.completed"):
                done[event.item_id] = now
                texts.append(event.transcript)
                if sender.done() and len(done) == len(stopped):
                    break
        await sender
    return {
        "from_speech_end": [done[i] - speech_end[i] for i in done],
        "first_from_speech_end": [first[i] - speech_end[i] for i in done if i in first],
        "from_stopped": [done[i] - stopped[i] for i in done],
        "first_from_stopped": [first[i] - stopped[i] for i in done if i in first],
        "wer": word_error_rate(" ".join([JFK_TEXT] * rounds), " ".join(texts)),
        "texts": texts,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--sessions", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--show", action="store_true", help="print each session's transcripts")
    parser.add_argument("--no-baseline", action="store_true", help="skip the full-window baseline")
    args = parser.parse_args()
    pcm = pcm16(AUDIO.read_bytes())
    modes = (
        [("quick road", "1")] if args.no_baseline else [("full window (baseline)", "0"), ("quick road", "1")]
    )
    rows = []
    for mode, quick in modes:
        rows += [(mode, *row) for row in _measure(args, pcm, quick)]
    load = os.getloadavg()[0]
    print(  # noqa: T201
        f"{args.model}, {os.cpu_count()} CPU cores ({platform.machine()}), "
        f"load average {load:.1f} at the end, jfk.flac x{args.rounds} per session paced in 40 ms chunks, "
        "server VAD defaults, beam 1, int8"
    )
    print(  # noqa: T201
        "| decoding | sessions | utterances | to completed from speech end p50 / p95 "
        "| from speech_stopped p50 / p95 | first delta from speech end p50 / p95 | CPU s per audio s | WER |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")  # noqa: T201
    for mode, count, m, cpu, wer in rows:
        print(  # noqa: T201
            f"| {mode} | {count} | {len(m['from_stopped'])} "
            f"| {percentile(m['from_speech_end'], 0.5):.2f} / {percentile(m['from_speech_end'], 0.95):.2f} s "
            f"| {percentile(m['from_stopped'], 0.5):.2f} / {percentile(m['from_stopped'], 0.95):.2f} s "
            f"| {percentile(m['first_from_speech_end'], 0.5):.2f} / "
            f"{percentile(m['first_from_speech_end'], 0.95):.2f} s "
            f"| {cpu:.3f} | {wer:.1%} |"
        )


def _measure(args: argparse.Namespace, pcm: bytes, quick: str) -> list[tuple[int, dict, float, float]]:
    """Start a server (the quick road on or off), warm it, run each session count on it."""
    log = Path(tempfile.mkdtemp(prefix="bench-realtime-")) / "server.log"
    env = {
        "WHISPER_MODEL": args.model,
        "WHISPER_API_THREADS": "8",
        "WHISPER_API_REALTIME_QUICK_DECODE": quick,
    }
    server = ServerProcess(env, log).start()
    rows = []
    try:
        assert server.process is not None
        (worker,) = worker_pids(server.process.pid)
        process = psutil.Process(worker)
        asyncio.run(one_session(server.base_url, pcm[: 2 * 24_000 * 3], 1))  # warm-up
        for count in args.sessions:
            cpu = process.cpu_times()
            results = asyncio.run(_many(server.base_url, pcm, args.rounds, count))
            used = process.cpu_times()
            cpu_seconds = used.user + used.system - cpu.user - cpu.system
            audio_seconds = count * args.rounds * (len(pcm) / 48_000 + 1.5)
            merged = {key: [v for r in results for v in r[key]] for key in results[0] if key != "wer"}
            if args.show:
                for r in results:
                    print(f"  quick={quick}, {count} sessions, WER {r['wer']:.1%}: {' | '.join(r['texts'])}")  # noqa: T201
            rows.append(
                (count, merged, cpu_seconds / audio_seconds, statistics.mean(r["wer"] for r in results))
            )
    finally:
        server.stop()
    return rows


async def _many(url: str, pcm: bytes, rounds: int, count: int) -> list[dict[str, Any]]:
    return await asyncio.gather(*(one_session(url, pcm, rounds) for _ in range(count)))


if __name__ == "__main__":
    main()
