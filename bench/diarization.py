"""What diarization costs: seconds per audio minute, memory, and how well it attributes words.

Usage: .venv/bin/python -m bench.diarization [--model tiny.en] [--rounds 3] [--threads 2]
Builds the tests' two-voice espeak-ng conversation (needs Debian's espeak-ng), repeated `rounds`
times, and on one faster-whisper model (int8, CPU) measures in one process, one after the other:
the plain transcription, the same transcription diarized (mono: speaker encoder + clustering),
and the speaker encoder's own share, each in wall and in CPU seconds per audio minute. Reports
the word error rate of the transcript, the share of words given to the right voice, and memory
(RSS) before and after the speaker encoder loads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import psutil

from bench.wer import word_error_rate
from tests.support.conversation import TURNS, Turn, best_names, conversation, words_attributed
from whisper_api.config import Settings
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.diarize import DiarizationSettings, transcribe_diarized
from whisper_api.engine.engines import warm_up
from whisper_api.engine.faster import DeviceChoice, FasterWhisperTranscriber
from whisper_api.engine.locator import locate_model
from whisper_api.engine.speaker_encoder import get_encoder
from whisper_api.engine.types import Audio, ModelSearch, TranscriptionOptions, collect


def rss_mib() -> float:
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def repeated(rounds: int) -> tuple[Audio, list[Turn], str]:
    wav, turns = conversation()
    one = decode_audio(wav).samples
    length = len(one) / 16_000
    samples = np.concatenate([one] * rounds)
    shifted = [
        Turn(t.speaker, t.text, t.start + r * length, t.end + r * length)
        for r in range(rounds)
        for t in turns
    ]
    reference = " ".join(text for _ in range(rounds) for _, text in TURNS)
    return Audio(samples), shifted, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    audio, turns, reference = repeated(args.rounds)
    location = locate_model(args.model, ModelSearch(cache_dir=Settings().cache_dir))
    transcriber = FasterWhisperTranscriber(location, DeviceChoice("cpu", 0, "int8", args.threads))
    options = TranscriptionOptions(beam_size=1)
    warm_up(transcriber)

    started, cpu = time.perf_counter(), time.process_time()
    plain = collect(*transcriber.transcribe(audio, options))
    plain_s, plain_cpu = time.perf_counter() - started, time.process_time() - cpu

    before = rss_mib()
    started = time.perf_counter()
    encoder = get_encoder()
    load_s = time.perf_counter() - started
    after_load = rss_mib()

    started, cpu = time.perf_counter(), time.process_time()
    info, segments = transcribe_diarized(
        transcriber, audio, [], options, [], lambda: encoder, DiarizationSettings()
    )
    labelled = list(segments)
    diarized_s, diarized_cpu = time.perf_counter() - started, time.process_time() - cpu

    started, cpu = time.perf_counter(), time.process_time()
    for segment in labelled:
        encoder.embed(audio.samples[int(segment.start * 16_000) : int(segment.end * 16_000)])
    embed_s, embed_cpu = time.perf_counter() - started, time.process_time() - cpu

    rows = [{"start": s.start, "end": s.end, "text": s.text, "speaker": s.speaker} for s in labelled]
    names = best_names(rows, turns)
    minutes = audio.duration / 60
    result = {
        "model": args.model,
        "threads": args.threads,
        "audio_seconds": round(audio.duration, 1),
        "segments": len(labelled),
        "speakers": sorted({s.speaker for s in labelled if s.speaker}),
        "words_attributed": round(words_attributed(rows, turns, names), 3),
        "wer_plain": round(word_error_rate(reference, plain.text), 3),
        "wer_diarized": round(word_error_rate(reference, " ".join(r["text"] for r in rows)), 3),
        "plain_s_per_audio_min": round(plain_s / minutes, 2),
        "diarized_s_per_audio_min": round(diarized_s / minutes, 2),
        "speaker_encoder_s_per_audio_min": round(embed_s / minutes, 2),
        # CPU seconds (all threads) are steadier than wall time on a shared machine.
        "plain_cpu_s_per_audio_min": round(plain_cpu / minutes, 2),
        "diarized_cpu_s_per_audio_min": round(diarized_cpu / minutes, 2),
        "speaker_encoder_cpu_s_per_audio_min": round(embed_cpu / minutes, 2),
        "encoder_load_s": round(load_s, 2),
        "rss_mib_before_encoder": round(before, 1),
        "rss_mib_after_encoder_load": round(after_load, 1),
        "rss_mib_after_diarizing": round(rss_mib(), 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
