"""The engine called directly in one process, as the server's worker calls it: the overhead's base.

Run as a subprocess (`python -m bench.direct REQUEST.json`) so its threads and memory do not mix
with the benchmark's own; prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.server import peak_rss_bytes
from whisper_api.config import Settings
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.engines import engine_for, loader_for, model_search
from whisper_api.engine.types import TranscriptionOptions, collect


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Load the model with the server's loader, then decode and transcribe each file in turn."""
    config = request["config"]
    settings = Settings.from_env(request["environment"])
    started = time.perf_counter()
    location = engine_for(settings).locate(settings.model, model_search(settings))
    transcriber = loader_for(settings)(location)
    load_seconds = time.perf_counter() - started
    options = TranscriptionOptions(beam_size=settings.beam_size, vad_filter=settings.vad_filter)
    files = []
    for item in request["files"]:
        data = Path(item["path"]).read_bytes()
        times = []
        for _ in range(request["repeats"]):
            began = time.perf_counter()
            audio = decode_audio(
                data, max_seconds=settings.max_audio_seconds, keep_seconds=settings.decoded_audio_seconds
            )
            transcript = collect(*transcriber.transcribe(audio, options))
            times.append(time.perf_counter() - began)
        segments = [[s.start, s.end, s.text] for s in transcript.segments]
        files.append({"name": item["name"], "seconds": times, "segments": segments})
    return {
        "config": config,
        "load_seconds": load_seconds,
        "peak_rss_bytes": peak_rss_bytes(os.getpid()),
        "files": files,
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    payload = json.loads(Path(sys.argv[1]).read_text())
    json.dump(run(payload), sys.stdout)
