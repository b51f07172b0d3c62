"""Text to speech with a Piper voice (ONNX Runtime), sentence by sentence.

The text is cut into sentences (the first one also at commas when long, so the first audio is
ready sooner) and each piece is synthesised and handed over as soon as it is done: a caller that
streams can send it while the next piece is computed.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

#: Pieces longer than this are cut again at commas / semicolons, for an early first audio chunk.
FIRST_PIECE_CHARS = 60
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+|\n{2,}|\n(?=\s*[-*•\d])")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
#: Longest piece synthesised at once, in characters (ONNX Runtime's buffers grow with it).
MAX_PIECE_CHARS = 300
#: Short silence put between pieces, in seconds (Piper ends each sentence cleanly, without a pause).
PIECE_PAUSE = 0.12


@dataclass(frozen=True)
class SpeechOptions:
    """How to speak: `speed` 0.25-4.0 (1 = the voice's own pace; the pitch stays the same)."""

    speed: float = 1.0


@dataclass(frozen=True)
class SpeechChunk:
    """One synthesised piece: mono float32 samples in [-1, 1] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    characters: int
    seconds_spent: float

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def split_text(text: str, first_max: int = FIRST_PIECE_CHARS) -> list[str]:
    """Sentences of `text`; the first long one is also cut at clause marks, and any piece longer
    than MAX_PIECE_CHARS at clause marks, then between words (memory grows with a piece's length)."""
    pieces = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p and p.strip()]
    if pieces and len(pieces[0]) > first_max:
        pieces[:1] = _clauses(pieces[0])
    bounded: list[str] = []
    for piece in pieces:
        for clause in _clauses(piece) if len(piece) > MAX_PIECE_CHARS else [piece]:
            bounded.extend(_words_upto(clause, MAX_PIECE_CHARS))
    return bounded


def _clauses(sentence: str) -> list[str]:
    head: list[str] = []
    for clause in (c for c in _CLAUSE_END.split(sentence) if c.strip()):
        if head and len(head[-1]) < 20:  # never a piece of one or two words
            head[-1] = f"{head[-1]} {clause}"
        else:
            head.append(clause)
    return head


def _words_upto(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    out: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > limit:  # one "word" longer than a piece (a URL, a hash)
            if line:
                out.append(line)
                line = ""
            out.append(word[:limit])
            word = word[limit:]
        if line and len(line) + 1 + len(word) > limit:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out


class Voice:
    """A loaded Piper voice (thread-safe: ONNX Runtime sessions may be run concurrently)."""

    def __init__(self, name: str, piper_voice: object, sample_rate: int, language: str) -> None:
        self.name = name
        self._voice = piper_voice
        self.sample_rate = sample_rate
        self.language = language

    def synthesize(self, text: str, options: SpeechOptions) -> Iterator[SpeechChunk]:
        """Audio for `text`, one chunk per piece as soon as each is computed."""
        from piper import SynthesisConfig

        # Piper's own length scale is far from proportional (2x asked gave 1.6x), so the voice
        # speaks at its pace and the tempo is changed afterwards, pitch kept (FFmpeg's atempo).
        config = SynthesisConfig(length_scale=self._length_scale)
        pause = np.zeros(int(PIECE_PAUSE * self.sample_rate), dtype=np.float32)
        for index, piece in enumerate(split_text(text)):
            started = time.perf_counter()
            parts = [c.audio_float_array for c in self._voice.synthesize(piece, config)]  # type: ignore[attr-defined]
            if not parts:
                continue
            if index:
                parts.insert(0, pause)
            samples = np.concatenate(parts).astype(np.float32, copy=False)
            if options.speed != 1.0:
                samples = change_tempo(samples, self.sample_rate, options.speed)
            yield SpeechChunk(samples, self.sample_rate, len(piece), time.perf_counter() - started)

    @property
    def _length_scale(self) -> float:
        return float(self._voice.config.length_scale)  # type: ignore[attr-defined]


def change_tempo(samples: np.ndarray, rate: int, speed: float) -> np.ndarray:
    """`samples` played `speed` times faster, pitch unchanged (atempo takes 0.5-2 per stage)."""
    from fractions import Fraction

    import av
    from av.filter import Graph

    graph = Graph()
    nodes = [graph.add_abuffer(format="flt", sample_rate=rate, layout="mono", time_base=Fraction(1, rate))]
    left = speed
    while left > 2.0 or left < 0.5:
        step = 2.0 if left > 2.0 else 0.5
        nodes.append(graph.add("atempo", str(step)))
        left /= step
    nodes.append(graph.add("atempo", f"{left:.6f}"))
    nodes.append(graph.add("abuffersink"))
    graph.link_nodes(*nodes).configure()
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    frame.time_base = Fraction(1, rate)
    graph.push(frame)
    graph.push(None)
    out: list[np.ndarray] = []
    while True:
        try:
            out.append(graph.pull().to_ndarray().reshape(-1))
        except (av.error.EOFError, av.error.BlockingIOError):
            break
    return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


def load_voice(name: str, model_path: Path, config_path: Path, threads: int) -> Voice:
    """Load a Piper voice for CPU with `threads` ONNX threads, and warm it up once."""
    import json

    import onnxruntime
    from piper import PiperConfig, PiperVoice

    logging.getLogger("piper").setLevel(max(logging.INFO, logging.getLogger("piper").level))  # it logs text
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    # Without the arena and the per-shape memory plans, buffers go back after each piece: in one
    # process, 26-51 MiB above the loaded voice after 8 long texts instead of 31-160 MiB.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    voice = Voice(name, PiperVoice(session=session, config=config), config.sample_rate, config.espeak_voice)
    for _ in voice.synthesize("Ready.", SpeechOptions()):  # the first run of a session is slow
        pass
    return voice
