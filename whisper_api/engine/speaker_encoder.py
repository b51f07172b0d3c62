"""A speaker-embedding model: the GE2E speaker encoder whose weights ship in Resemblyzer's wheel.

Only the weights (`resemblyzer/pretrained.pt`, Apache-2.0) come from that package; the package
itself is never imported (it would pull librosa and webrtcvad). The network and its front end are
written here from the published architecture: 40-channel mel power spectrogram (25 ms windows,
10 ms hop, 16 kHz), a 3-layer LSTM of 256 units, a 256-unit linear projection with ReLU, and an
L2-normalised output; an utterance's embedding is the normalised mean over its 1.6 s windows.
Needs torch: the optional `scripts/setup diarization` install.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from whisper_api.engine.types import SAMPLE_RATE

logger = logging.getLogger(__name__)

WEIGHTS_PACKAGE = "resemblyzer"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
INSTALL_HINT = (
    "install the optional speaker model with `scripts/setup diarization` "
    "(pip install -r requirements-diarization.txt, then pip install --no-deps -r "
    "requirements-diarization-nodeps.txt)"
)

N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s windows
# Windows side by side, not overlapping as in the encoder's training (1.3 a second): half the
# cost, and the same speakers found on the tests' conversation (bench/diarization.py).
PARTIAL_STEP = 160
MAX_PARTIALS = 12  # a long clip is sampled at this many windows, spread evenly: bounded cost
MIN_COVERAGE = 0.75  # a last window shorter than this share of 1.6 s is dropped
TARGET_DBFS = -30.0


class SpeakerModelMissingError(RuntimeError):
    """torch or the speaker weights are not installed."""


def weights_path() -> Path | None:
    """Where the speaker weights are installed, without importing their package."""
    if importlib.util.find_spec("torch") is None:
        return None
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    return path if path.is_file() else None


def available() -> bool:
    return weights_path() is not None


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """Triangular filters on the Slaney mel scale, area-normalised, shape (40, 201)."""
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    widths = np.diff(edges)
    slopes = edges[:, None] - fft_hz[None, :]
    lower = -slopes[:-2] / widths[:-1, None]
    upper = slopes[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(lower, upper))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return filters.astype(np.float32)


def mel_frames(samples: np.ndarray) -> np.ndarray:
    """Mel power spectrogram, frames first: (n_frames, 40); centred, reflect-padded windows."""
    padded = np.pad(samples.astype(np.float32), N_FFT // 2, mode="reflect")
    count = 1 + (len(padded) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(count)[:, None]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(padded[index] * window, axis=1)) ** 2
    return (power @ mel_filterbank().T).astype(np.float32)


def normalise_volume(samples: np.ndarray) -> np.ndarray:
    """Raise quiet audio to -30 dBFS (never lower it), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0
    if rms <= 1e-6:
        return samples
    gain_db = TARGET_DBFS - 20 * np.log10(rms)
    return samples * (10 ** (gain_db / 20)) if gain_db > 0 else samples


def partial_windows(n_frames: int) -> list[tuple[int, int]]:
    """Frame ranges of the 1.6 s windows covering an utterance (at least one)."""
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + PARTIAL_STEP), PARTIAL_STEP))
    windows = [(s, s + PARTIAL_FRAMES) for s in starts]
    if len(windows) > 1 and (n_frames - windows[-1][0]) / PARTIAL_FRAMES < MIN_COVERAGE:
        windows.pop()
    if len(windows) > MAX_PARTIALS:
        picks = np.linspace(0, len(windows) - 1, MAX_PARTIALS).round().astype(int)
        windows = [windows[i] for i in picks]
    return windows


class SpeakerEncoder:
    """Loaded speaker-embedding network; `embed` maps a clip to a unit vector of 256 floats."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import torch

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != WEIGHTS_SHA256:
            raise SpeakerModelMissingError(f"speaker weights at {path} have an unexpected sha256 ({digest})")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint.get("model_state", checkpoint)
        self._lstm = torch.nn.LSTM(N_MELS, 256, num_layers=3, batch_first=True)
        self._linear = torch.nn.Linear(256, 256)
        self._lstm.load_state_dict(
            {k.removeprefix("lstm."): v for k, v in state.items() if k.startswith("lstm.")}
        )
        self._linear.load_state_dict(
            {k.removeprefix("linear."): v for k, v in state.items() if k.startswith("linear.")}
        )
        self._lstm.eval()
        self._linear.eval()
        self._lock = threading.Lock()  # LSTM modules are not safe to share between threads

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """The speaker embedding of one clip of 16 kHz mono audio."""
        import torch

        samples = normalise_volume(samples)
        frames = mel_frames(samples)
        windows = partial_windows(len(frames))
        needed = windows[-1][1]
        if len(frames) < needed:
            frames = np.pad(frames, ((0, needed - len(frames)), (0, 0)))
        batch = torch.from_numpy(np.stack([frames[a:b] for a, b in windows]))
        with self._lock, torch.no_grad():
            _, (hidden, _) = self._lstm(batch)
            partials = torch.relu(self._linear(hidden[-1]))
            partials = partials / partials.norm(dim=1, keepdim=True).clamp_min(1e-8)
        mean = partials.mean(dim=0).numpy().astype(np.float64)
        return mean / max(float(np.linalg.norm(mean)), 1e-8)


_encoder: SpeakerEncoder | None = None
_encoder_lock = threading.Lock()


def get_encoder() -> SpeakerEncoder:
    """The process's speaker encoder, loaded on first use (17 MB of weights)."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            path = weights_path()
            if path is None:
                raise SpeakerModelMissingError(INSTALL_HINT)
            _encoder = SpeakerEncoder(path)
            logger.info("speaker encoder loaded from %s", path)
        return _encoder


def embed_many(encoder: Any, clips: list[np.ndarray]) -> np.ndarray:  # noqa: ANN401
    """Embeddings of several clips, one row each."""
    return np.stack([encoder.embed(clip) for clip in clips]) if clips else np.zeros((0, 256))
