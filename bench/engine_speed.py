"""Real-time factor of both engines on the same weights, in one process on the same machine.

Usage: .venv/bin/python -m bench.engine_speed [--models tiny.en base] [--threads 2]
Loads faster-whisper (int8) and openai-whisper (float32, the converted checkpoint) on the CPU,
runs one warm-up decode each, then transcribes jfk.flac and multilingual.mp3 with default options
(beam 5, temperature fallback). RTF = seconds of audio per wall-clock second (higher is faster).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from whisper_api.config import Settings
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.checkpoints import locate_checkpoint
from whisper_api.engine.engines import warm_up
from whisper_api.engine.faster import DeviceChoice, FasterWhisperTranscriber
from whisper_api.engine.locator import locate_model
from whisper_api.engine.openai_whisper import OpenAIWhisperTranscriber, choose_torch_device
from whisper_api.engine.types import ModelSearch, Transcriber, TranscriptionOptions, collect
from whisper_api.server_process import ROOT

AUDIO = Path(os.environ.get("WHISPER_API_TEST_AUDIO", ROOT.parent / "shared" / "audio"))
CLIPS = ("jfk.flac", "multilingual.mp3")


def engines(model: str, threads: int, cache_dir: Path) -> dict[str, Callable[[], Transcriber]]:
    return {
        "faster-whisper int8": lambda: FasterWhisperTranscriber(
            locate_model(model, ModelSearch(cache_dir=cache_dir)), DeviceChoice("cpu", 0, "int8", threads)
        ),
        "openai-whisper float32": lambda: OpenAIWhisperTranscriber(
            locate_checkpoint(model, ModelSearch(cache_dir=cache_dir, offline=True)),
            choose_torch_device("cpu", threads),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--threads", type=int, default=Settings().cpu_count)
    args = parser.parse_args()
    clips = {clip: decode_audio((AUDIO / clip).read_bytes()) for clip in CLIPS}
    out = sys.stdout
    out.write(
        "| model | engine | clip | audio s | wall s | RTF | load avg |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
    )
    for model in args.models:
        for name, make in engines(model, args.threads, Settings().cache_dir).items():
            transcriber = make()
            warm_up(transcriber)
            for clip, audio in clips.items():
                started = time.perf_counter()
                collect(*transcriber.transcribe(audio, TranscriptionOptions()))
                wall = time.perf_counter() - started
                out.write(
                    f"| {model} | {name} | {clip} | {audio.duration:.1f} | {wall:.1f} | "
                    f"{audio.duration / wall:.1f}x | {os.getloadavg()[0]:.1f} |\n"
                )
                out.flush()


if __name__ == "__main__":
    main()
