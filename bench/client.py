"""Requests through the official OpenAI SDK: one at a time, concurrent clients, and streaming."""

from __future__ import annotations

import math
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import openai

from bench.clips import Clip

#: Seconds a segment may start before its passage (timestamps are not exact) and still be scored.
SCORE_SLACK = 1.0


def make_client(base_url: str) -> openai.OpenAI:
    """A client as users have it: the SDK's default retries, so a 429 is waited out, not lost."""
    return openai.OpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=2, timeout=900)


def scored_text(clip: Clip, segments: list[tuple[float, str]]) -> str:
    """The transcript of the part of the clip that has a reference text."""
    if clip.scored_until is not None:
        return "".join(text for start, text in segments if start < clip.scored_until)
    if clip.partly_scored:
        spans = [(p.start - SCORE_SLACK, p.end) for p in clip.passages if p.text is not None]
        return "".join(text for start, text in segments if any(a <= start < b for a, b in spans))
    return "".join(text for _, text in segments)


@dataclass(frozen=True)
class Result:
    seconds: float
    scored: str
    #: words transcribed beyond the scored part (how much of an unscored tail came out)
    tail_words: int
    #: (start, end, text) of every segment, for the coverage check
    segments: tuple[tuple[float, float, str], ...] = ()


def transcribe(client: openai.OpenAI, model: str, clip: Clip, data: bytes) -> Result:
    """One request (verbose_json, for segment times); wall time from send to parsed response."""
    started = time.perf_counter()
    response = client.audio.transcriptions.create(
        model=model, file=(clip.path.name, data), response_format="verbose_json"
    )
    seconds = time.perf_counter() - started
    segments = [(float(s.start), float(s.end), s.text) for s in response.segments or []]
    return _result(clip, segments, seconds)


def _result(clip: Clip, segments: list[tuple[float, float, str]], seconds: float) -> Result:
    scored = scored_text(clip, [(start, text) for start, _, text in segments])
    tail = "".join(text for start, _, text in segments if clip.scored_until and start >= clip.scored_until)
    return Result(seconds, scored, len(tail.split()), tuple(segments))


@dataclass(frozen=True)
class LoadLevel:
    clients: int
    requests: int
    wall_seconds: float
    throughput: float  # audio seconds per wall second, all clients together
    p50: float
    p95: float
    scored: tuple[str, ...]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def load_level(base_url: str, model: str, clip: Clip, clients: int, per_client: int) -> LoadLevel:
    """`clients` concurrent SDK clients, each sending `per_client` requests back to back."""
    data = clip.path.read_bytes()
    start = threading.Barrier(clients + 1)

    def one_client() -> list[Result]:
        client = make_client(base_url)
        start.wait()
        return [transcribe(client, model, clip, data) for _ in range(per_client)]

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(one_client) for _ in range(clients)]
        start.wait()
        began = time.perf_counter()
        results = [r for f in futures for r in f.result()]
        wall = time.perf_counter() - began
    latencies = [r.seconds for r in results]
    return LoadLevel(
        clients=clients,
        requests=len(results),
        wall_seconds=wall,
        throughput=clip.duration * len(results) / wall,
        p50=statistics.median(latencies),
        p95=percentile(latencies, 95),
        scored=tuple(r.scored for r in results),
    )


@dataclass(frozen=True)
class StreamResult:
    first_delta_seconds: float | None
    total_seconds: float
    deltas: int
    text: str


def stream(client: openai.OpenAI, model: str, clip: Clip, data: bytes) -> StreamResult:
    """`stream=true`: time from sending the request to the first `transcript.text.delta`."""
    started = time.perf_counter()
    first: float | None = None
    deltas = 0
    text = ""
    events = client.audio.transcriptions.create(model=model, file=(clip.path.name, data), stream=True)
    for event in events:
        if event.type == "transcript.text.delta":
            deltas += 1
            if first is None:
                first = time.perf_counter() - started
        elif event.type == "transcript.text.done":
            text = event.text
    return StreamResult(first, time.perf_counter() - started, deltas, text)
