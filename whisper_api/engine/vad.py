"""Silero VAD as faster-whisper ships it, run 33 s at a time.

faster-whisper's model reads up to 10,000 windows of 32 ms (320 s) in one ONNX run: on a 240 s
chunk that held ~100 MiB for the run (12 MiB for 30 s). The network reads its batch in order,
carrying its state from window to window, and faster-whisper carries that state from one run to
the next, so smaller runs give the same probabilities, to the bit (checked on ref71x3). Every
caller of `get_speech_timestamps` (the driver's pauses and speech, faster-whisper's own
`vad_filter`) uses the one model faster-whisper caches; `bound_vad_batches()` makes it read
BATCH_WINDOWS at a time.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

#: Windows of 32 ms read per ONNX run (33 s of audio).
BATCH_WINDOWS = 1024
#: Samples per window, and samples of the window before that each one is given as context.
WINDOW_SAMPLES = 512
CONTEXT_SAMPLES = 64
#: The size of the network's two state tensors.
STATE_SHAPE = (1, 1, 128)


@functools.cache
def bound_vad_batches() -> None:
    """Make faster-whisper's cached Silero model read BATCH_WINDOWS windows per run (once)."""
    from faster_whisper.vad import get_vad_model

    model = get_vad_model()
    if not isinstance(model, _Bounded):
        model.__class__ = type("BoundedSileroVADModel", (_Bounded, type(model)), {})


class _Bounded:
    """`__call__` of faster-whisper's `SileroVADModel`, in runs of BATCH_WINDOWS windows."""

    session: Any

    def __call__(
        self,
        audio: np.ndarray,
        num_samples: int = WINDOW_SAMPLES,
        context_size_samples: int = CONTEXT_SAMPLES,
    ) -> np.ndarray:
        """Speech probability of each `num_samples` window of `audio` (its length a multiple)."""
        if audio.ndim != 1 or len(audio) % num_samples:
            raise ValueError("Silero VAD reads mono audio in whole windows")
        windows = audio.reshape(-1, num_samples)
        state_h = np.zeros(STATE_SHAPE, dtype=np.float32)
        state_c = np.zeros(STATE_SHAPE, dtype=np.float32)
        outputs = []
        for first in range(0, len(windows), BATCH_WINDOWS):
            batch = windows[first : first + BATCH_WINDOWS]
            # each window is read after the last samples of the one before (silence before the first)
            if first:
                before = windows[first - 1 : first, -context_size_samples:]
            else:
                before = np.zeros((1, context_size_samples), dtype=np.float32)
            context = np.concatenate([before, batch[:-1, -context_size_samples:]])
            rows = np.concatenate([context, batch], axis=1)
            output, state_h, state_c = self.session.run(None, {"input": rows, "h": state_h, "c": state_c})
            outputs.append(output)
        return np.concatenate(outputs, axis=0) if outputs else np.zeros(0, dtype=np.float32)
