"""A window's token limit (`WHISPER_API_MAX_WINDOW_TOKENS`) is the number of tokens decoded.

CTranslate2 4.8's Whisper generates at most half its `max_length`; faster-whisper passes the
prompt's length plus the budget, so a fresh window stopped at about 111 tokens (which 30 s of
dense speech fills) instead of 220.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.test_long_audio import transcriber
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.types import SAMPLE_RATE, TranscriptionOptions
from whisper_api.engine.windows import WindowPolicy


def _first_window_tokens(budget: int, audio_dir: Path) -> int:
    jfk = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples
    samples = np.tile(jfk, 3)[: 30 * SAMPLE_RATE]  # 30 s of speech: over 60 tokens
    model = transcriber("tiny.en", WindowPolicy(max_window_tokens=budget))
    segments = model.decode(samples, TranscriptionOptions(beam_size=1), "en", None)
    return sum(len(s.tokens) for s in segments if s.seek == 0)


def test_a_window_decodes_up_to_its_whole_budget(audio_dir: Path) -> None:
    # the segments hold the text tokens and the timestamps that close them, less the last,
    # unfinished segment: under the budget, but more than the half CTranslate2 stopped at
    for budget in (40, 60):
        assert budget / 2 < _first_window_tokens(budget, audio_dir) <= budget
