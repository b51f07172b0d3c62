"""gunicorn settings for a checkout (`gunicorn -c gunicorn.conf.py wsgi:app`): the installed package's
own, which the `whisper-api` command uses too (whisper_api/gunicorn_config.py)."""

from whisper_api.gunicorn_config import *  # noqa: F403 - gunicorn reads settings and hooks by name
