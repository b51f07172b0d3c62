"""Every setting of whisper_api, defined once: name, default, unit and meaning.

Settings are read from the environment (`WHISPER_API_*`, plus the customer's `WHISPER_MODEL`,
`WHISPER_ENGINE`, `WHISPER_MODEL_DIR` and the upstream LLM's `CHAT_UPSTREAM_*`) and can be
overridden in code through `create_app`.
`python -m whisper_api.config` prints them as the README's configuration table.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "base"


def _setting(default: Any, env: str, meaning: str) -> Any:
    return field(default=default, metadata={"env": env, "help": meaning})


@dataclass(frozen=True)
class Settings:
    """Configuration of one server process (and its gunicorn workers)."""

    model: str = _setting(
        DEFAULT_MODEL,
        "WHISPER_MODEL",
        "Default model: a packaged name (`base`, `tiny.en`), a CTranslate2 directory, or any "
        "Whisper name (`small`, `large-v3`, `turbo`, ...)",
    )
    engine: str = _setting(
        "faster-whisper",
        "WHISPER_ENGINE",
        "Inference engine: `faster-whisper` (CTranslate2) or `openai-whisper` (PyTorch); see docs/engines.md",
    )
    extra_models: tuple[str, ...] = _setting(
        (),
        "WHISPER_API_MODELS",
        "Comma-separated further models clients may ask for by name (loaded on demand)",
    )
    max_loaded_models: int = _setting(
        2,
        "WHISPER_API_MAX_LOADED_MODELS",
        "Models kept in memory per worker (the least recently used idle one is unloaded)",
    )
    model_ram_mb: int = _setting(
        0,
        "WHISPER_API_MODEL_RAM_MB",
        "RAM the models of one worker may take, in MiB (estimated from their weights); the least "
        "recently used idle model is unloaded to make room; 0 = no limit",
    )
    model_gpu_mb: int = _setting(
        0,
        "WHISPER_API_MODEL_GPU_MB",
        "GPU memory the models of one worker may take, in MiB, as WHISPER_API_MODEL_RAM_MB; 0 = no limit",
    )
    model_idle_seconds: float = _setting(
        0.0,
        "WHISPER_API_MODEL_IDLE_SECONDS",
        "Unload a model nobody has used for this many seconds (pinned models stay); 0 = never",
    )
    malloc_arenas: int = _setting(
        2,
        "WHISPER_API_MALLOC_ARENAS",
        "glibc malloc arenas per worker (each thread otherwise gets its own, which keep what it "
        "freed: 713 MiB peak instead of 579 MiB over four requests); 0 = glibc's own; "
        "MALLOC_ARENA_MAX wins",
    )
    malloc_mmap_threshold_kb: int = _setting(
        256,
        "WHISPER_API_MALLOC_MMAP_KB",
        "While a model loads, memory blocks of at least this many KiB get a mapping of their own, so "
        "its weights go back to the system whole when it is unloaded (glibc's mmap threshold, 32 MiB "
        "between loads; glibc's own would put a later model's weights in its heap, and the worker "
        "would grow with every model loaded); 0 = glibc's own",
    )
    pin_default_model: bool = _setting(
        True,
        "WHISPER_API_PIN_DEFAULT_MODEL",
        "Keep the default model loaded: never unloaded for room or idleness (the admin API can unpin it)",
    )
    model_aliases: tuple[str, ...] = _setting(
        (),
        "WHISPER_API_MODEL_ALIASES",
        "Comma-separated `name=model` pairs, e.g. `whisper-1=large-v3,gpt-4o-mini-transcribe=tiny.en`; "
        "OpenAI names not listed are served by the default model",
    )
    device: str = _setting("auto", "WHISPER_API_DEVICE", "`auto`, `cpu` or `cuda`")
    device_index: int = _setting(
        0, "WHISPER_API_DEVICE_INDEX", "GPU index used by this process (set per worker by gunicorn)"
    )
    gpus: tuple[str, ...] = _setting(
        (),
        "WHISPER_API_GPUS",
        "GPU indexes shared out to gunicorn workers, e.g. `0,1,3`; empty = CPU (unless "
        "WHISPER_API_DEVICE=cuda)",
    )
    compute_type: str = _setting(
        "default",
        "WHISPER_API_COMPUTE_TYPE",
        "CTranslate2 compute type; `default` is int8 on CPU, float16 on CUDA",
    )
    cpu_threads: int = _setting(
        0,
        "WHISPER_API_CPU_THREADS",
        "Threads per transcription; 0 = twice the worker's cores / parallel transcriptions "
        "(at most its cores), the best measured on 2 cores (BENCHMARKS.md)",
    )
    inference_workers: int = _setting(
        0,
        "WHISPER_API_INFERENCE_WORKERS",
        "Transcriptions one worker decodes in parallel (CTranslate2 `num_workers`, one shared copy "
        "of the weights); 0 = its cores (2 to 3 cores), half its cores (4 or more)",
    )
    beam_size: int = _setting(
        1, "WHISPER_API_BEAM_SIZE", "Beam size (1 = greedy with temperature fallback, as openai-whisper)"
    )
    vad_filter: bool = _setting(
        False,
        "WHISPER_API_VAD",
        "Skip silence with Silero VAD by default (per request: the `vad_filter` form field)",
    )
    cache_dir: Path = _setting(
        Path("~/.cache/whisper_api").expanduser(),
        "WHISPER_API_CACHE_DIR",
        "Where packaged models are assembled and verified once",
    )
    model_dir: Path | None = _setting(
        None, "WHISPER_MODEL_DIR", "Extra folder searched for models (`<dir>/<name>/model.bin`)"
    )
    offline: bool = _setting(
        False,
        "WHISPER_API_OFFLINE",
        "Never download models; only packaged and local models are used",
    )
    download_timeout: float = _setting(
        10.0, "WHISPER_API_DOWNLOAD_TIMEOUT", "Seconds before a model download attempt gives up"
    )
    max_upload_bytes: int = _setting(
        26_214_400, "WHISPER_API_MAX_UPLOAD_BYTES", "Largest request body accepted (bytes)"
    )
    bind: str = _setting("0.0.0.0:8000", "WHISPER_API_BIND", "gunicorn listen address")
    workers: int = _setting(
        0,
        "WHISPER_API_WORKERS",
        "gunicorn workers, each with its own model; 0 = one per GPU in WHISPER_API_GPUS, else 1",
    )
    threads: int = _setting(
        8, "WHISPER_API_THREADS", "Threads per worker (health checks and streams stay responsive)"
    )
    timeout: int = _setting(
        900, "WHISPER_API_TIMEOUT", "Seconds a worker may stay silent before gunicorn replaces it"
    )
    max_audio_seconds: float = _setting(
        14_400.0, "WHISPER_API_MAX_AUDIO_SECONDS", "Longest audio accepted, in seconds of sound"
    )
    log_level: str = _setting("info", "WHISPER_API_LOG_LEVEL", "Python log level")
    diarization_threshold: float = _setting(
        0.8,
        "WHISPER_API_DIARIZATION_THRESHOLD",
        "Mono diarization: cosine similarity of speaker embeddings under which two voices are "
        "different speakers (higher finds more speakers)",
    )
    diarization_max_speakers: int = _setting(
        8, "WHISPER_API_DIARIZATION_MAX_SPEAKERS", "Most speakers mono diarization tells apart"
    )
    diarization_max_channels: int = _setting(
        8,
        "WHISPER_API_DIARIZATION_MAX_CHANNELS",
        "Most channels transcribed one speaker each (more channels are mixed and diarized as mono)",
    )
    diarization_max_channel_seconds: float = _setting(
        1800.0,
        "WHISPER_API_DIARIZATION_MAX_CHANNEL_SECONDS",
        "Longest recording split into its channels for diarization (each channel is held in memory, "
        "230 MiB per channel-hour); longer ones are mixed and diarized as mono",
    )
    known_speaker_max_seconds: float = _setting(
        30.0, "WHISPER_API_KNOWN_SPEAKER_MAX_SECONDS", "Longest `known_speaker_references[]` clip (seconds)"
    )
    chat_upstream_base_url: str | None = _setting(
        None,
        "CHAT_UPSTREAM_BASE_URL",
        "OpenAI-compatible LLM that answers `/v1/chat/completions` after audio parts are replaced by "
        "their transcripts (e.g. `http://llm:8080/v1`); unset = chat replies with the transcript",
    )
    chat_upstream_model: str | None = _setting(
        None, "CHAT_UPSTREAM_MODEL", "Model name sent to the upstream LLM (unset = the client's `model`)"
    )
    chat_upstream_api_key: str | None = _setting(
        None, "CHAT_UPSTREAM_API_KEY", "Bearer key for the upstream LLM (never logged)"
    )
    chat_upstream_timeout: float = _setting(
        300.0, "WHISPER_API_CHAT_UPSTREAM_TIMEOUT", "Seconds to wait for the upstream LLM to answer"
    )
    log_format: str = _setting(
        "json",
        "WHISPER_API_LOG_FORMAT",
        "Per-request log line: `json` (one object a line), `text` (key=value) or `off`",
    )
    trusted_proxies: int = _setting(
        0,
        "WHISPER_API_TRUSTED_PROXIES",
        "Reverse proxies in front of the server whose `X-Forwarded-For/-Proto/-Host/-Port/-Prefix` "
        "are honoured; 0 = ignore those headers",
    )
    metrics_dir: Path | None = _setting(
        None,
        "PROMETHEUS_MULTIPROC_DIR",
        "Folder where gunicorn workers share `/metrics` counters; unset = a fresh temporary folder",
    )
    max_concurrent: int = _setting(
        0,
        "WHISPER_API_MAX_CONCURRENT",
        "Requests one worker admits at the same time; 0 = WHISPER_API_INFERENCE_WORKERS",
    )
    max_queue: int = _setting(
        4,
        "WHISPER_API_MAX_QUEUE",
        "Transcriptions one worker lets wait for a slot; past that, 429 `server_busy` at once "
        "(capped so one thread per worker stays free for /health)",
    )
    queue_timeout: float = _setting(
        30.0, "WHISPER_API_QUEUE_TIMEOUT", "Seconds a request may wait for a slot before a 429"
    )
    window_seconds: float = _setting(
        240.0,
        "WHISPER_API_WINDOW_SECONDS",
        "Seconds of audio handed to the engine at once (it seeks from one 30 s window to the next "
        "inside them, as Whisper does), cut in the longest pause in their last two thirds; the next "
        "starts where the transcript stops and skipped speech is decoded again (bounds memory per "
        "transcription). 30 = one window per chunk: more encoder passes, and more word errors on "
        "the benchmark's clips (see BENCHMARKS.md)",
    )
    max_window_tokens: int = _setting(
        220,
        "WHISPER_API_MAX_WINDOW_TOKENS",
        "Most tokens decoded per 30 s window and temperature (at most 220: Whisper's 448-token context "
        "less the longest prompt), so no input makes a window cost more than a fixed multiple of normal",
    )
    batch_windows: int = _setting(
        0,
        "WHISPER_API_BATCH_WINDOWS",
        "faster-whisper: windows of one request decoded at once (cut at pauses found by Silero VAD; "
        "what a window loses is decoded again sequentially; docs/engines.md); 0 or 1 = one window "
        "after another",
    )
    language_per_window: bool = _setting(
        True,
        "WHISPER_API_LANGUAGE_PER_WINDOW",
        "With no `language` in the request, decode each 30 s window in its own detected language, so "
        "audio that switches language is transcribed as spoken (off: every window in the language of "
        "the first 30 s, as openai-whisper does, which paraphrases the other language into it)",
    )
    decoded_audio_seconds: float = _setting(
        600.0,
        "WHISPER_API_DECODED_AUDIO_SECONDS",
        "Longest upload kept decoded in memory (64 KB per second); a longer one is decoded again, "
        "window by window, as it is transcribed, so memory does not grow with its length",
    )
    decode_timeout: float = _setting(
        30.0,
        "WHISPER_API_DECODE_TIMEOUT",
        "Seconds an upload may spend decoding, plus 1 s per 10 s of audio it yields",
    )
    timeout_base: float = _setting(
        120.0, "WHISPER_API_TIMEOUT_BASE", "Seconds every transcription may take, before audio scaling"
    )
    timeout_per_audio_second: float = _setting(
        2.0,
        "WHISPER_API_TIMEOUT_PER_AUDIO_SECOND",
        "Extra seconds a transcription may take per second of audio (a 1 h file: 2 h with 2.0)",
    )
    graceful_timeout: int = _setting(
        120,
        "WHISPER_API_GRACEFUL_TIMEOUT",
        "Seconds SIGTERM waits for requests in flight to finish before workers are stopped",
    )
    max_form_field_bytes: int = _setting(
        500_000, "WHISPER_API_MAX_FIELD_BYTES", "Largest non-file form field (e.g. `prompt`), in bytes"
    )
    max_form_parts: int = _setting(100, "WHISPER_API_MAX_FORM_PARTS", "Most multipart parts per request")
    header_timeout: float = _setting(
        10.0,
        "WHISPER_API_HEADER_TIMEOUT",
        "Seconds a client may take to send a request's head (line and headers); past it: 408, closed",
    )
    body_timeout: float = _setting(
        20.0,
        "WHISPER_API_BODY_TIMEOUT",
        "Seconds of grace a request body gets before WHISPER_API_MIN_BODY_RATE applies; a body "
        "slower than both: 408, closed",
    )
    min_body_rate: int = _setting(
        16_384,
        "WHISPER_API_MIN_BODY_RATE",
        "Slowest accepted upload, in bytes per second on average (after WHISPER_API_BODY_TIMEOUT)",
    )
    max_connections: int = _setting(
        64,
        "WHISPER_API_MAX_CONNECTIONS",
        "Open client connections one worker keeps; past it: 503 `too_many_connections` at once, closed",
    )
    drain_seconds: float = _setting(
        10.0,
        "WHISPER_API_DRAIN_SECONDS",
        "After an early answer (401, 413, 429), seconds the unread upload is still read and "
        "discarded so proxies receive the answer; then the connection is closed",
    )
    api_keys: tuple[str, ...] = _setting(
        (),
        "WHISPER_API_KEYS",
        "Comma-separated API keys clients must send (`Authorization: Bearer KEY`); none = open",
    )
    admin_keys: tuple[str, ...] = _setting(
        (),
        "WHISPER_API_ADMIN_KEYS",
        "Comma-separated keys for the admin API (`/admin/models`, `Authorization: Bearer KEY`), "
        "separate from WHISPER_API_KEYS; none = the admin API is off",
    )
    control_dir: Path | None = _setting(
        None,
        "WHISPER_API_CONTROL_DIR",
        "Folder where gunicorn workers share the admin API's wanted model state and report theirs; "
        "unset = a fresh temporary folder per server",
    )
    api_keys_file: Path | None = _setting(
        None,
        "WHISPER_API_KEYS_FILE",
        "File with one API key per line (`#` comments); adds to WHISPER_API_KEYS",
    )

    realtime_max_sessions: int = _setting(
        4,
        "WHISPER_API_REALTIME_MAX_SESSIONS",
        "Realtime WebSocket sessions one worker holds at once (each keeps a gunicorn thread; capped so "
        "two threads stay free for HTTP); past that the handshake gets 429",
    )
    realtime_idle_timeout: float = _setting(
        60.0,
        "WHISPER_API_REALTIME_IDLE_TIMEOUT",
        "Seconds a Realtime session may go without a client event before it is closed",
    )
    realtime_max_session_seconds: float = _setting(
        3600.0,
        "WHISPER_API_REALTIME_MAX_SESSION_SECONDS",
        "Longest a Realtime session may last, in seconds (OpenAI's limit is 60 minutes)",
    )
    realtime_max_buffer_seconds: float = _setting(
        120.0,
        "WHISPER_API_REALTIME_MAX_BUFFER_SECONDS",
        "Seconds of audio a Realtime session may hold uncommitted: server VAD commits it, without "
        "turn detection the session is closed",
    )
    realtime_quick_decode: bool = _setting(
        True,
        "WHISPER_API_REALTIME_QUICK_DECODE",
        "Realtime utterances decoded for latency (faster-whisper: encoded at their own length, "
        "decoding started at pauses in speech); off: each as a full 30 s window once committed",
    )
    voices_dir: Path | None = _setting(
        None,
        "WHISPER_API_VOICES_DIR",
        "Extra folder searched for text-to-speech voices (Piper `<name>.onnx` + `<name>.onnx.json`, "
        "optional `<name>.onnx.sha256`)",
    )
    default_voice: str = _setting(
        "",
        "WHISPER_API_VOICE",
        "Voice that OpenAI's voice names (`alloy`, `nova`, ...) speak with; empty = the first installed",
    )
    preload_voice: bool = _setting(
        False,
        "WHISPER_API_PRELOAD_VOICE",
        "Load the default voice when a worker starts (about 120 MiB per worker), so the first "
        "speech request does not wait for it (0.4 s on a 2-core machine); off = on first use, so a "
        "transcription-only server never holds it",
    )
    voice_map: tuple[str, ...] = _setting(
        (),
        "WHISPER_API_VOICE_MAP",
        "Comma-separated `openai_name=installed_voice` pairs (e.g. `nova=en_GB-alba-medium`); "
        "names not listed use WHISPER_API_VOICE",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables; unset or empty variables keep defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"], "").strip()
            if raw:
                values[f.name] = _parse(f.name, f.default, raw)
        return cls(**values)

    @property
    def alias_map(self) -> dict[str, str]:
        """The `WHISPER_API_MODEL_ALIASES` pairs as a mapping; a malformed pair is a ValueError."""
        aliases = {}
        for pair in self.model_aliases:
            name, sep, model = (part.strip() for part in pair.partition("="))
            if not (sep and name and model):
                raise ValueError(f"WHISPER_API_MODEL_ALIASES: {pair!r} is not `name=model`")
            aliases[name] = model
        return aliases

    @property
    def effective_max_queue(self) -> int:
        """Waiting room that still leaves one gunicorn thread free for /health and 429s."""
        return max(0, min(self.max_queue, self.threads - self.effective_max_concurrent - 1))

    @property
    def effective_realtime_sessions(self) -> int:
        """Sessions per worker, leaving two gunicorn threads for HTTP requests and probes."""
        return max(0, min(self.realtime_max_sessions, self.threads - 2))

    @property
    def cpu_count(self) -> int:
        """The cores this process may use (its CPU affinity and its container's CPU quota)."""
        return available_cores()

    @property
    def effective_workers(self) -> int:
        """One process per GPU, else one: it decodes in parallel with one copy of the model (a
        second process on 2 cores lost the race for connections, see BENCHMARKS.md)."""
        return self.workers or max(1, len(self.gpus))

    @property
    def worker_cores(self) -> int:
        return max(1, self.cpu_count // self.effective_workers)

    @property
    def effective_inference_workers(self) -> int:
        if self.inference_workers:
            return self.inference_workers
        cores = self.worker_cores
        return cores if cores < 4 else cores // 2

    @property
    def effective_max_concurrent(self) -> int:
        return self.max_concurrent or self.effective_inference_workers

    @property
    def effective_cpu_threads(self) -> int:
        if self.cpu_threads:
            return self.cpu_threads
        return max(1, min(self.worker_cores, 2 * self.worker_cores // self.effective_inference_workers))


def available_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may run on: its CPU affinity (`taskset`, a pinned container), and the
    cgroup v2 CPU quota (`docker run --cpus`, a Kubernetes CPU limit), rounded up. The machine's
    count would give a 2-CPU container on a 16-core host eight parallel decoders of four threads."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return max(1, cores)


def _parse(name: str, default: Any, raw: str) -> Any:
    kind = type(default)
    try:
        if isinstance(default, bool):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if isinstance(default, tuple):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        if isinstance(default, Path) or name in {
            "model_dir",
            "metrics_dir",
            "api_keys_file",
            "voices_dir",
            "control_dir",
        }:
            return Path(raw).expanduser()
        if kind in (int, float):
            return kind(raw)
        return raw
    except ValueError as exc:
        raise ValueError(f"setting {name}: cannot parse {raw!r}") from exc


def settings_table() -> str:
    """Markdown table of all settings, for the README."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(default) or "(none)"
        elif isinstance(default, Path):
            default = (
                "~/" + str(default.relative_to(Path.home()))
                if str(default).startswith(str(Path.home()))
                else str(default)
            )
        elif default is None:
            default = "(none)"
        rows.append(f"| `{f.metadata['env']}` | `{default}` | {f.metadata['help']} |")
    return "\n".join(rows)


def write_generated(path: Path, marker: str, content: str) -> None:
    """Rewrite what lies between `<!-- {marker}:start -->` and `<!-- {marker}:end -->` in a file."""
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{content}\n{end}{tail}", encoding="utf-8")


def update_readme(path: Path) -> None:
    """Rewrite the table between the settings-table markers of a README."""
    write_generated(path, "settings-table", settings_table())


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--update-readme"]:
        update_readme(Path(sys.argv[2] if len(sys.argv) > 2 else "README.md"))
    else:
        print(settings_table())  # noqa: T201 - a command-line helper
