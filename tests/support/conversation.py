"""A two-voice conversation built with espeak-ng (Debian's `espeak-ng`), with its reference turns."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from tests.support.media import speech_samples, wav_bytes

#: Two clearly different espeak-ng voices: a low male US voice and a high female British one.
VOICES = {"low": ("en-us+m3", "35"), "high": ("en-gb+f4", "75")}

TURNS: tuple[tuple[str, str], ...] = (
    ("low", "Good morning, thank you for calling the support line. How can I help you today?"),
    ("high", "Hello, my internet connection keeps dropping every evening after dinner."),
    ("low", "I am sorry to hear that. Can you tell me which router model you are using?"),
    ("high", "It is the white one you sent me last spring, with the blue lights on the front."),
    ("low", "Thank you. Please unplug it, wait ten seconds, and plug it back in again."),
    ("high", "All right, I have done that, and the lights are blinking green now."),
    ("low", "Perfect. The connection should be stable from now on. Is there anything else?"),
    ("high", "No, that is everything. Thank you very much for your patience and your help."),
)
GAP_SECONDS = 0.7


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str
    start: float
    end: float


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def say(text: str, voice: str) -> np.ndarray:
    name, pitch = VOICES[voice]
    wav = subprocess.run(
        ["espeak-ng", "-v", name, "-p", pitch, "-s", "150", "--stdout", text], capture_output=True, check=True
    ).stdout
    return speech_samples(wav)


def conversation() -> tuple[bytes, list[Turn]]:
    """The conversation as 16 kHz mono WAV and its turns with their times."""
    gap = np.zeros(int(GAP_SECONDS * 16_000), dtype=np.float32)
    parts: list[np.ndarray] = [gap]
    turns: list[Turn] = []
    clock = GAP_SECONDS
    for speaker, text in TURNS:
        samples = say(text, speaker)
        turns.append(Turn(speaker, text, clock, clock + len(samples) / 16_000))
        parts += [samples, gap]
        clock += (len(samples) + len(gap)) / 16_000
    return wav_bytes(np.concatenate(parts)), turns


def reference_clip(voice: str) -> bytes:
    """A few seconds of one voice saying something not in the conversation (a known-speaker sample)."""
    return wav_bytes(say("This is a short sample of my voice, recorded for the speaker reference.", voice))


def words_attributed(segments: list[dict], turns: list[Turn], names: dict[str, str]) -> float:
    """Share of transcribed words whose segment's speaker is the voice speaking at its middle.

    `names` maps each returned speaker label to a voice; labels not in it count as wrong.
    """
    right = total = 0
    for segment in segments:
        words = len(segment["text"].split())
        middle = (segment["start"] + segment["end"]) / 2
        truth = min(
            turns,
            key=lambda t: (
                0 if t.start <= middle <= t.end else min(abs(middle - t.start), abs(middle - t.end))
            ),
        )
        total += words
        right += words if names.get(segment["speaker"]) == truth.speaker else 0
    return right / total if total else 0.0


def best_names(segments: list[dict], turns: list[Turn]) -> dict[str, str]:
    """Map each returned label to the voice it most often covers (by words)."""
    votes: dict[str, dict[str, int]] = {}
    for segment in segments:
        middle = (segment["start"] + segment["end"]) / 2
        truth = min(
            turns,
            key=lambda t: (
                0 if t.start <= middle <= t.end else min(abs(middle - t.start), abs(middle - t.end))
            ),
        )
        tally = votes.setdefault(segment["speaker"], {})
        tally[truth.speaker] = tally.get(truth.speaker, 0) + len(segment["text"].split())
    return {label: max(tally, key=lambda v: tally[v]) for label, tally in votes.items()}
