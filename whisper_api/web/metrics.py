"""Prometheus metrics at `/metrics`, summed over gunicorn workers (prometheus_client multiprocess mode).

gunicorn.conf.py points `PROMETHEUS_MULTIPROC_DIR` at a shared folder before any worker starts; each
worker then writes its values there and a scrape of any worker reads them all. Without that variable
(tests with Flask's client, `flask run`) the process's own registry is served.

Other modules record through the objects and helpers below, e.g. a request queue:
`with waiting_in_queue(): ...` around the wait for a slot, `reject("queue_full")` on a 429.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from whisper_api.web.apidoc import documented

PREFIX = "whisper_api"

REQUESTS = Counter(
    f"{PREFIX}_requests",
    "HTTP requests answered, by endpoint (URL rule), method and status code",
    ["endpoint", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "Time from request start to the last byte of the response (streams included)",
    ["endpoint"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
AUDIO_SECONDS = Counter(
    f"{PREFIX}_audio_seconds",
    "Seconds of audio transcribed or translated successfully",
    ["model", "task"],
)
REALTIME_FACTOR = Histogram(
    f"{PREFIX}_realtime_factor",
    "Processing time divided by audio duration, per request (below 1 = faster than real time)",
    ["model", "task"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5),
)
QUEUE_DEPTH = Gauge(
    f"{PREFIX}_queue_depth",
    "Requests waiting for a model, summed over live workers",
    multiprocess_mode="livesum",
)
SLOTS = Gauge(
    f"{PREFIX}_slots",
    "Transcriptions the live workers run at once (WHISPER_API_MAX_CONCURRENT per worker), summed",
    multiprocess_mode="livesum",
)
SLOTS_BUSY = Gauge(
    f"{PREFIX}_slots_busy",
    "Transcriptions running now, summed over live workers (busy / slots: what autoscaling follows)",
    multiprocess_mode="livesum",
)
REJECTIONS = Counter(
    f"{PREFIX}_rejections",
    "Requests refused before transcription because the server is busy, by reason",
    ["reason"],
)
MODEL_LOAD_SECONDS = Histogram(
    f"{PREFIX}_model_load_seconds",
    "Time to load a model into a worker (warm-up included)",
    ["model"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
MODELS_LOADED = Gauge(
    f"{PREFIX}_models_loaded",
    "Live workers holding each model in memory",
    ["model"],
    multiprocess_mode="livesum",
)
WORKER_MODELS = Gauge(
    f"{PREFIX}_worker_model_loaded",
    "1 while this worker (pid) holds the model in memory",
    ["model"],
    multiprocess_mode="liveall",
)
MODEL_MEMORY = Gauge(
    f"{PREFIX}_model_memory_megabytes",
    "Memory a loaded model takes in this worker (pid), in MiB, by kind (ram, gpu)",
    ["model", "kind"],
    multiprocess_mode="liveall",
)
MODEL_LOADS = Counter(f"{PREFIX}_model_loads", "Models loaded into a worker", ["model"])
MODEL_UNLOADS = Counter(
    f"{PREFIX}_model_unloads",
    "Models unloaded from a worker, by reason (room, idle, admin)",
    ["model", "reason"],
)

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@documented(
    "Prometheus metrics of every worker (needs a key when keys are set)",
    responses={200: ("Prometheus text format", {CONTENT_TYPE_LATEST: str})},
)
def metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class ModelMetrics:
    """The registry's `ModelEvents`: loads (timed by the registry), unloads and memory per model."""

    def loaded(self, name: str, seconds: float, ram_mb: float, gpu_mb: float) -> None:
        MODEL_LOAD_SECONDS.labels(model=name).observe(seconds)
        MODEL_LOADS.labels(model=name).inc()
        self._hold(name, 1, ram_mb, gpu_mb)

    def unloaded(self, name: str, reason: str) -> None:
        MODEL_UNLOADS.labels(model=name, reason=reason).inc()
        self._hold(name, 0, 0.0, 0.0)

    @staticmethod
    def _hold(name: str, loaded: int, ram_mb: float, gpu_mb: float) -> None:
        MODELS_LOADED.labels(model=name).set(loaded)
        WORKER_MODELS.labels(model=name).set(loaded)
        MODEL_MEMORY.labels(model=name, kind="ram").set(ram_mb)
        MODEL_MEMORY.labels(model=name, kind="gpu").set(gpu_mb)


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(endpoint=endpoint, method=method, status=str(status)).inc()
    REQUEST_SECONDS.labels(endpoint=endpoint).observe(seconds)


def observe_audio(model: str, task: str, audio_seconds: float, processing_seconds: float) -> None:
    AUDIO_SECONDS.labels(model=model, task=task).inc(audio_seconds)
    if audio_seconds > 0:
        REALTIME_FACTOR.labels(model=model, task=task).observe(processing_seconds / audio_seconds)


@contextmanager
def waiting_in_queue() -> Iterator[None]:
    """Count a request in `whisper_api_queue_depth` while it waits for a slot."""
    QUEUE_DEPTH.inc()
    try:
        yield
    finally:
        QUEUE_DEPTH.dec()


def reject(reason: str) -> None:
    """Count a request turned away before transcription (`queue_full`, `queue_timeout`, ...)."""
    REJECTIONS.labels(reason=reason).inc()


SPEECH_CHARACTERS = Counter(
    f"{PREFIX}_speech_characters",
    "Characters of text synthesised into speech, by voice",
    ["voice"],
)
SPEECH_AUDIO_SECONDS = Counter(
    f"{PREFIX}_speech_audio_seconds",
    "Seconds of speech audio produced, by voice",
    ["voice"],
)
SPEECH_REALTIME_FACTOR = Histogram(
    f"{PREFIX}_speech_realtime_factor",
    "Synthesis time divided by the audio duration produced, per piece (below 1 = faster than real time)",
    ["voice"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5),
)


def observe_speech(voice: str, characters: int, audio_seconds: float, processing_seconds: float) -> None:
    """Count one synthesised piece of speech."""
    SPEECH_CHARACTERS.labels(voice=voice).inc(characters)
    SPEECH_AUDIO_SECONDS.labels(voice=voice).inc(audio_seconds)
    if audio_seconds > 0:
        SPEECH_REALTIME_FACTOR.labels(voice=voice).observe(processing_seconds / audio_seconds)
