"""What the server bounds, how, and with which setting: the table in docs/security.md.

The defaults come from `Settings`, so the documentation cannot drift from the code;
`python -m whisper_api.limits --update docs/security.md` rewrites the table, a test checks it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from whisper_api.config import Settings, write_generated
from whisper_api.engine.speech import MAX_PIECE_CHARS
from whisper_api.web.body import MAX_JSON_DEPTH
from whisper_api.web.speech_schemas import MAX_INPUT_CHARS
from whisper_api.worker import MAX_HEAD_BYTES, PROBE_THREADS


@dataclass(frozen=True)
class Limit:
    """One bound: what it limits, what happens past it, and the settings that set it."""

    what: str
    how: str
    settings: tuple[str, ...] = ()
    fixed: str = ""  # a bound in the code, for rows without a setting


LIMITS: tuple[Limit, ...] = (
    Limit("Request body (bytes)", "413 `request_too_large` as soon as it is passed", ("max_upload_bytes",)),
    Limit("One form field, e.g. `prompt` (bytes)", "413", ("max_form_field_bytes",)),
    Limit("Form parts per request", "413", ("max_form_parts",)),
    Limit(
        "Time to send the request head (s)",
        "408 `request_timeout`, closed; the head is read by the worker's event loop, so a slow "
        "head holds no thread",
        ("header_timeout",),
    ),
    Limit(
        "Size of the request head",
        "414/431 (gunicorn: request line 4094 B, 100 header fields of 8190 B)",
        fixed=f"{MAX_HEAD_BYTES} B read before a thread takes it",
    ),
    Limit(
        "Upload speed (grace in s, then bytes/s on average)",
        "408 `request_timeout`, closed",
        ("body_timeout", "min_body_rate"),
    ),
    Limit(
        "Open connections per worker",
        "503 `too_many_connections` at once, closed",
        ("max_connections",),
    ),
    Limit("Threads per worker (requests served at once)", "others wait for a thread", ("threads",)),
    Limit(
        "Probe threads per worker (`/health`, `/ready`, `/metrics`)",
        "probes never wait behind requests",
        fixed=str(PROBE_THREADS),
    ),
    Limit(
        "Transcriptions running per worker (0 = its inference workers)",
        "the next ones wait in the queue",
        ("max_concurrent",),
    ),
    Limit(
        "Requests waiting per worker (capped to leave a thread free)",
        "429 `server_busy` + `Retry-After` at once, before the body is read",
        ("max_queue",),
    ),
    Limit("Wait in the queue (s)", "429 `server_busy`", ("queue_timeout",)),
    Limit(
        "Audio per request, all parts of a chat together (s)",
        "400 `audio_too_long`, from the headers, the packets, then the decoded samples",
        ("max_audio_seconds",),
    ),
    Limit("Decoding time (s, plus 1 s per 10 s decoded)", "504 `timeout`", ("decode_timeout",)),
    Limit(
        "Decoded audio kept in memory per transcription (s, 64 KB each)",
        "a longer upload is decoded again window by window as it is transcribed",
        ("decoded_audio_seconds",),
    ),
    Limit(
        "Audio handed to the engine at once (s)",
        "memory per transcription does not grow with the audio's length",
        ("window_seconds",),
    ),
    Limit(
        "Tokens decoded per window and temperature",
        "decoding stops there: no window costs more than a fixed multiple of normal",
        ("max_window_tokens",),
    ),
    Limit(
        "Transcription time (s, plus s per second of audio)",
        "504 `timeout` (an error event when streaming)",
        ("timeout_base", "timeout_per_audio_second"),
    ),
    Limit(
        "Unread upload after an early answer (s; at most twice the body limit)",
        "read and discarded after the answer is sent; if more is left, closed",
        ("drain_seconds",),
    ),
    Limit("JSON nesting (chat)", "400 `invalid_json`", fixed=f"{MAX_JSON_DEPTH} levels"),
    Limit("Text to speak (`input`, characters)", "400 naming `input`", fixed=str(MAX_INPUT_CHARS)),
    Limit(
        "Text synthesised at once (characters)",
        "longer sentences are cut at clauses, then between words (bounded memory)",
        fixed=str(MAX_PIECE_CHARS),
    ),
    Limit(
        "Speech time (s, plus s per second of audio it will make, at 15 characters a second)",
        "the stream stops (an error event with `stream_format=sse`)",
        ("timeout_base", "timeout_per_audio_second"),
    ),
    Limit("Voices loaded per worker", "each installed voice once, on first use (~100 MiB)", fixed="all"),
    Limit("Models loaded per worker", "least recently used is unloaded", ("max_loaded_models",)),
    Limit("Upstream LLM answer (s)", "502 `upstream_error`", ("chat_upstream_timeout",)),
    Limit("SIGTERM drain (s)", "requests still running are stopped", ("graceful_timeout",)),
    Limit("Worker silence (s)", "gunicorn replaces the worker", ("timeout",)),
)


def limits_table() -> str:
    """Markdown table of every bound with its settings' defaults."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    rows = ["| bounded | past the bound | setting | default |", "| --- | --- | --- | --- |"]
    for limit in LIMITS:
        if limit.settings:
            names = " + ".join(f"`{fields[s].metadata['env']}`" for s in limit.settings)
            defaults = " + ".join(f"`{fields[s].default}`" for s in limit.settings)
        else:
            names, defaults = "(fixed)", limit.fixed
        rows.append(f"| {limit.what} | {limit.how} | {names} | {defaults} |")
    return "\n".join(rows)


def update_document(path: Path) -> None:
    """Rewrite the table between the limits-table markers of a Markdown file."""
    write_generated(path, "limits-table", limits_table())


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--update"]:
        update_document(Path(sys.argv[2] if len(sys.argv) > 2 else "docs/security.md"))
    else:
        print(limits_table())  # noqa: T201 - a command-line helper
