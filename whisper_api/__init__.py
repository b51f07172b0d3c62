"""whisper_api: a self-hosted, drop-in replacement for OpenAI's audio APIs.

Importing this package does nothing heavy; `whisper_api.web.create_app` builds the Flask app.
"""

__version__ = "0.1.0"
