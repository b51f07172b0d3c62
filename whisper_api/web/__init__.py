"""The HTTP layer: Flask app factory, OpenAI-shaped blueprints, schemas and formatting."""

from whisper_api.web.app import create_app

__all__ = ["create_app"]
