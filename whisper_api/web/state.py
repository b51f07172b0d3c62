"""What the app shares between requests, kept in `app.extensions["whisper_api"]`."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from whisper_api.config import Settings
from whisper_api.engine.registry import ModelRegistry
from whisper_api.engine.voices import VoiceCatalog
from whisper_api.web.admission import Admission
from whisper_api.web.pipeline import Pipeline

EXTENSION_KEY = "whisper_api"


@dataclass
class AppState:
    settings: Settings
    registry: ModelRegistry
    admission: Admission = field(default_factory=lambda: Admission(1, 0, 30.0))
    voices: VoiceCatalog = field(default_factory=lambda: VoiceCatalog(None, 1))
    pipeline: Pipeline = field(init=False)

    def __post_init__(self) -> None:
        self.pipeline = Pipeline(self.settings, self.registry, self.admission)


def get_state() -> AppState:
    return current_app.extensions[EXTENSION_KEY]
