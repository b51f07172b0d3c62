"""The `whisper-api` command: gunicorn with whisper_api's settings, as `scripts/serve` starts it."""

from __future__ import annotations

import sys
from collections.abc import Sequence

GUNICORN_CONFIG = "python:whisper_api.gunicorn_config"
APP = "whisper_api.web:create_app()"


def gunicorn_argv(args: Sequence[str]) -> list[str]:
    """gunicorn's command line: our config, any extra gunicorn options, then the app factory."""
    return ["whisper-api", "-c", GUNICORN_CONFIG, *args, APP]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server; settings come from the environment (`python -m whisper_api.config`)."""
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = gunicorn_argv(sys.argv[1:] if argv is None else argv)
    WSGIApplication("%(prog)s [gunicorn options]", prog="whisper-api").run()


if __name__ == "__main__":
    main()
