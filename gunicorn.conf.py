"""gunicorn settings: one model per worker, loaded after fork, never in the master.

Every value comes from whisper_api's settings (environment variables, see README). This file only
imports the light `whisper_api.config`; torch, CTranslate2 and CUDA are touched in workers only.
"""

from __future__ import annotations

import sys

from whisper_api.config import Settings

_settings = Settings.from_env()

bind = _settings.bind
workers = _settings.effective_workers
worker_class = "whisper_api.worker.DrainingThreadWorker"  # gthread: /health answers while busy
threads = _settings.threads
timeout = _settings.timeout  # a long file must never be mistaken for a hung worker
graceful_timeout = _settings.graceful_timeout  # SIGTERM: requests in flight may finish
keepalive = 5
preload_app = False  # a CTranslate2 model loaded before fork() hangs in the child
worker_tmp_dir = "/dev/shm"
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": _settings.log_level.upper(), "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": _settings.log_level.upper(), "propagate": False,
                           "handlers": ["console"]},
        "gunicorn.access": {"level": "INFO", "propagate": False, "handlers": ["console"]},
        "faster_whisper": {"level": "WARNING"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"},
    },
}  # fmt: skip


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's Worker
    """Load the default model before this worker accepts its first request."""
    state = worker.wsgi.extensions["whisper_api"]
    try:
        state.registry.get(state.registry.default_name)
    except Exception as exc:  # noqa: BLE001 - any load failure must stop the server, loudly
        worker.log.error("cannot load model %r: %s", state.registry.default_name, exc)
        sys.exit(3)  # gunicorn's WORKER_BOOT_ERROR: the master stops instead of respawning
