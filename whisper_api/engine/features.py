"""Whisper's log-mel features of a chunk, computed 30 s at a time.

faster-whisper's `FeatureExtractor` transforms a whole chunk at once: for a 240 s chunk its
windowed frames and spectra take ~150 MiB and 0.37 s on this 2-core machine, against ~20 MiB and
0.07 s in 30 s pieces. The numbers are the same: every frame is the same short transform of the
same 400 samples (the chunk is padded once, as faster-whisper pads it), and the one step that
looks at the whole chunk, the floor 8 decades under its loudest value, runs on the joined result.
The last chunk computed is kept for one reuse: the chunk encoded ahead (`faster._EncoderAhead`)
is the one faster-whisper asks for next.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Frames computed at once: 30 s (Whisper's window).
PIECE_FRAMES = 3000
#: Decades kept under the loudest value (Whisper's dynamic range).
DYNAMIC_RANGE = 8.0


class PiecewiseFeatures:
    """A stand-in for faster-whisper's `FeatureExtractor` (called, and read for its attributes)."""

    def __init__(self, extractor: Any) -> None:  # noqa: ANN401 - faster_whisper's FeatureExtractor
        self._extractor = extractor
        self._window = np.hanning(extractor.n_fft + 1)[:-1].astype(np.float32)
        self._last: tuple[np.ndarray, int, np.ndarray] | None = None  # samples, padding, features

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - nb_max_frames, time_per_frame, ...
        return getattr(self._extractor, name)

    def __call__(
        self, waveform: np.ndarray, padding: int = 160, chunk_length: int | None = None
    ) -> np.ndarray:
        """The log-mel spectrogram of `waveform` (as `FeatureExtractor.__call__`)."""
        if chunk_length is not None:  # as faster-whisper's extractor (never passed by this server)
            return self._extractor(waveform, padding=padding, chunk_length=chunk_length)
        samples = waveform.astype(np.float32, copy=False)
        if self._last is not None:
            kept, kept_padding, features = self._last
            self._last = None
            if kept_padding == padding and kept.shape == samples.shape and np.array_equal(kept, samples):
                return features
        features = self._compute(samples, padding)
        self._last = (samples, padding, features)
        return features

    def forget(self) -> None:
        """Drop the kept chunk (the request is over)."""
        self._last = None

    def _compute(self, samples: np.ndarray, padding: int) -> np.ndarray:
        n_fft, hop = self._extractor.n_fft, self._extractor.hop_length
        if padding:
            samples = np.pad(samples, (0, padding))
        padded = np.pad(samples, n_fft // 2, mode="reflect")  # centred frames, as torch.stft
        frames = (len(padded) - n_fft) // hop  # every whole frame but the last, which Whisper drops
        log_spec = np.empty((self._extractor.mel_filters.shape[0], frames), dtype=np.float32)
        for first in range(0, frames, PIECE_FRAMES):
            count = min(PIECE_FRAMES, frames - first)
            piece = padded[first * hop : (first + count - 1) * hop + n_fft]
            strided = np.lib.stride_tricks.as_strided(
                piece, (count, n_fft), (hop * piece.strides[0], piece.strides[0]), writeable=False
            )
            spectrum = np.fft.rfft(strided * self._window, n=n_fft, axis=-1).astype(np.complex64)
            magnitudes = (np.abs(spectrum) ** 2).T
            mel = self._extractor.mel_filters @ magnitudes
            log_spec[:, first : first + count] = np.log10(np.clip(mel, a_min=1e-10, a_max=None))
        if frames:
            np.maximum(log_spec, log_spec.max() - DYNAMIC_RANGE, out=log_spec)
        log_spec += 4.0
        log_spec /= 4.0
        return log_spec
