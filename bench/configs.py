"""What is measured: server configurations and the run plans (full, quick, smoke)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ServerConfig:
    """One way to run the server; every field maps to a documented setting."""

    name: str
    engine: str = "faster-whisper"
    model: str = "base"
    workers: int = 2
    cpu_threads: int = 1
    #: transcriptions one worker runs at once (CTranslate2 num_workers, weights shared)
    inference_workers: int = 1
    beam_size: int = 1
    compute_type: str = "int8"
    vad: bool = False
    #: windows of one request decoded at once (WHISPER_API_BATCH_WINDOWS; 0 = sequential)
    batch_windows: int = 0
    #: concurrent client counts for the throughput/latency sweep
    concurrency: tuple[int, ...] = (1, 2)
    #: clips sent one at a time (RTF, overhead and WER); the first is the headline clip
    clips: tuple[str, ...] = ("ref71", "jfk", "long60")
    stream: bool = True
    #: seconds of silent FLAC uploaded after the clips, to read peak memory per worker by length
    memory_seconds: tuple[float, ...] = ()
    #: measure the server's own defaults (config.py): only model, engine and offline are set
    server_defaults: bool = False
    #: WHISPER_API_WINDOW_SECONDS (None: the server's default)
    window_seconds: float | None = None
    #: clips also timed with the engine called in-process (the server's overhead)
    direct_clips: tuple[str, ...] = ("ref71", "jfk")

    def environment(self) -> dict[str, str]:
        """The server's environment variables for this configuration."""
        if self.server_defaults:
            return {"WHISPER_ENGINE": self.engine, "WHISPER_MODEL": self.model, "WHISPER_API_OFFLINE": "1"}
        window = (
            {} if self.window_seconds is None else {"WHISPER_API_WINDOW_SECONDS": f"{self.window_seconds:g}"}
        )
        return window | {
            "WHISPER_ENGINE": self.engine,
            "WHISPER_MODEL": self.model,
            "WHISPER_API_WORKERS": str(self.workers),
            "WHISPER_API_CPU_THREADS": str(self.cpu_threads),
            "WHISPER_API_INFERENCE_WORKERS": str(self.inference_workers),
            "WHISPER_API_BEAM_SIZE": str(self.beam_size),
            "WHISPER_API_COMPUTE_TYPE": self.compute_type,
            "WHISPER_API_VAD": "1" if self.vad else "0",
            "WHISPER_API_BATCH_WINDOWS": str(self.batch_windows),
            "WHISPER_API_OFFLINE": "1",
        }

    def effective(self) -> ServerConfig:
        """This configuration with the values the server will really use."""
        if not self.server_defaults:
            return self
        from whisper_api.config import Settings

        settings = Settings.from_env(self.environment())
        return replace(
            self,
            workers=settings.effective_workers,
            cpu_threads=settings.effective_cpu_threads,
            inference_workers=settings.effective_inference_workers,
            beam_size=settings.beam_size,
            compute_type="int8" if settings.compute_type == "default" else settings.compute_type,
            vad=settings.vad_filter,
            batch_windows=settings.batch_windows,
        )

    def describe(self) -> str:
        if self.server_defaults:
            return "defaults: " + replace(self.effective(), server_defaults=False).describe()
        vad = " vad" if self.vad else ""
        vad += f" batch{self.batch_windows}" if self.batch_windows > 1 else ""
        vad += f" window{self.window_seconds:g}s" if self.window_seconds is not None else ""
        parallel = f" x {self.inference_workers}par" if self.inference_workers > 1 else ""
        return (
            f"{self.engine} {self.model} {self.compute_type} beam{self.beam_size}{vad} "
            f"{self.workers}w{parallel} x {self.cpu_threads}t"
        )


@dataclass(frozen=True)
class Plan:
    """A benchmark run: which clips, configurations and baseline files."""

    name: str
    long_seconds: tuple[float, ...]
    configs: tuple[ServerConfig, ...]
    baseline_clips: tuple[str, ...]
    baseline_model: str = "base"
    #: requests per client at each concurrency level
    requests_per_client: int = 1
    #: times each single-request measurement is repeated (the median is reported)
    repeats: int = 1
    use_short_clip: bool = False
    #: long clips made of ref71 repeated this many times (English and German in turn)
    ref71_repeats: tuple[int, ...] = ()
    #: held-out sentences spoken by the installed voice (`heldout`), when one is installed
    held_out: bool = False
    notes: tuple[str, ...] = field(default=())


SWEEP = (1, 2, 4, 8)

#: The clip the speed and memory targets are read on (the issue's 71 s reference clip).
TARGET_CLIP = "ref71"
#: First streamed text is measured on the 60 s file (ref71 where the plan has no long60).
STREAM_CLIP = "long60"

SHORT = ("ref71", "jfk")

LONG = ("ref71", "jfk", "long60", "long600", "ref71x3", "heldout")

#: Under 15 minutes on the 2-core machine: the defaults (240 s chunks, Whisper's own seeking inside
#: each), batched decoding and 30 s chunks (the defaults before) on every clip, one threads split on
#: the short ones, and the baseline on every clip.
FULL = Plan(
    name="full",
    long_seconds=(60.0, 600.0),
    configs=(
        ServerConfig(
            "defaults",
            concurrency=SWEEP,
            clips=LONG,
            memory_seconds=(60.0, 3600.0),
            server_defaults=True,
        ),
        ServerConfig(
            "int8-b1-1wp2x2-batch4",
            workers=1,
            inference_workers=2,
            cpu_threads=2,
            batch_windows=4,
            concurrency=(1, 2, 4),
            clips=LONG,
        ),
        ServerConfig(
            "int8-b1-1wp2x2-window30",
            workers=1,
            inference_workers=2,
            cpu_threads=2,
            window_seconds=30.0,
            concurrency=(1, 2),
            clips=LONG,
        ),
        ServerConfig("int8-b1-2x1", concurrency=(1, 2, 4), clips=SHORT, stream=False),
    ),
    baseline_clips=LONG,
    ref71_repeats=(3,),
    held_out=True,
)

QUICK = Plan(
    name="quick",
    long_seconds=(),
    configs=(
        ServerConfig("defaults", clips=SHORT, server_defaults=True),
        ServerConfig(
            "int8-b1-1wp2x2-batch4",
            workers=1,
            inference_workers=2,
            cpu_threads=2,
            batch_windows=4,
            clips=SHORT,
        ),
    ),
    baseline_clips=("jfk",),
)

SMOKE = Plan(
    name="smoke",
    long_seconds=(),
    configs=(
        ServerConfig(
            "tiny.en-int8-b1-1x1", model="tiny.en", workers=1, clips=("short",), direct_clips=("short",)
        ),
    ),
    baseline_clips=("short",),
    baseline_model="tiny.en",
    use_short_clip=True,
)

PLANS = {plan.name: plan for plan in (FULL, QUICK, SMOKE)}
