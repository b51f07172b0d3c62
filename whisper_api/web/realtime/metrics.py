"""Prometheus metrics of Realtime sessions (summed over workers like the rest of `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from whisper_api.web.metrics import PREFIX

OPEN_SESSIONS = Gauge(
    f"{PREFIX}_realtime_sessions_open",
    "Realtime WebSocket sessions open now, summed over live workers",
    multiprocess_mode="livesum",
)
SESSIONS = Counter(
    f"{PREFIX}_realtime_sessions",
    "Realtime sessions ended, by how they ended (client_closed, idle_timeout, max_duration, "
    "buffer_full, shutdown, error), refused at the handshake (full), or refused a missing or wrong "
    "key over the socket (unauthorized)",
    ["outcome"],
)
AUDIO_SECONDS = Counter(
    f"{PREFIX}_realtime_audio_seconds",
    "Seconds of audio received by Realtime sessions",
)
COMPLETION_SECONDS = Histogram(
    f"{PREFIX}_realtime_completion_seconds",
    "Time from the end of an utterance (speech stopped or commit) to its `completed` event",
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
)
FIRST_DELTA_SECONDS = Histogram(
    f"{PREFIX}_realtime_first_delta_seconds",
    "Time from the end of an utterance to its first transcript delta",
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
)
SPECULATIONS = Counter(
    f"{PREFIX}_realtime_speculations",
    "Utterances decoded at a pause in speech, by what became of the text: used by the commit that "
    "followed, or discarded because speech resumed",
    ["outcome"],
)
