"""The baseline: openai-whisper's own `transcribe()` in one process, with the seed server's settings.

The seed server (tiny-openai-whisper-api) calls `whisper.transcribe(model, file)` with the library's
defaults: greedy decoding with the temperature fallback (0.0, 0.2, ... 1.0), fp32 on CPU, torch's
default thread count. The weights are the same model as the server's, converted from CTranslate2.
Run as a subprocess (`python -m bench.baseline REQUEST.json`); prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.server import peak_rss_bytes
from whisper_api.engine.audio import decode_audio


def run(request: dict[str, Any]) -> dict[str, Any]:
    import torch
    import whisper

    from whisper_api.config import Settings
    from whisper_api.models import convert

    started = time.perf_counter()
    checkpoint = convert(request["model"], None, Settings.from_env())  # once; cached afterwards
    convert_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = whisper.load_model(str(checkpoint), device="cpu")
    load_seconds = time.perf_counter() - started
    # Steady state, as a long-running seed server is after its first request: warm up once.
    whisper.transcribe(model, np.zeros(16_000, dtype=np.float32), fp16=False)
    files = []
    for item in request["files"]:
        data = Path(item["path"]).read_bytes()
        times = []
        for _ in range(request["repeats"]):
            began = time.perf_counter()
            # The seed hands openai-whisper a file path, decoded by an ffmpeg subprocess; here
            # the same bytes are decoded in memory (PyAV), as the server does, and passed as samples.
            samples = decode_audio(data).samples
            result = whisper.transcribe(model, samples, fp16=False)
            times.append(time.perf_counter() - began)
        segments = [[float(s["start"]), float(s["end"]), s["text"]] for s in result["segments"]]
        files.append({"name": item["name"], "seconds": times, "segments": segments})
    return {
        "engine": "openai-whisper " + whisper.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "convert_seconds": convert_seconds,
        "load_seconds": load_seconds,
        "peak_rss_bytes": peak_rss_bytes(os.getpid()),
        "files": files,
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    payload = json.loads(Path(sys.argv[1]).read_text())
    json.dump(run(payload), sys.stdout)
