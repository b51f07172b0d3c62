"""gunicorn settings: one model per worker, loaded after fork, never in the master.

Every value comes from whisper_api's settings (environment variables, see README). This module only
imports the light `whisper_api.config`; torch, CTranslate2 and CUDA are touched in workers only.
Used as `gunicorn -c python:whisper_api.gunicorn_config` (the `whisper-api` command) and, through
the checkout's `gunicorn.conf.py`, as `gunicorn -c gunicorn.conf.py wsgi:app`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from whisper_api.config import Settings
from whisper_api.gpu_slots import GpuSlots, device_environment, parse_gpus

_settings = Settings.from_env()
_gpu_slots = GpuSlots(parse_gpus(_settings.gpus))  # master-side bookkeeping, no CUDA here

# /metrics sums every worker's values from files in one folder (prometheus_client multiprocess mode);
# the variable must be set before a worker imports prometheus_client.
_own_metrics_dir = _settings.metrics_dir is None
_shm = "/dev/shm" if os.path.isdir("/dev/shm") else None  # memory-backed: workers write on every request
_metrics_dir = _settings.metrics_dir or Path(tempfile.mkdtemp(prefix="whisper_api-metrics-", dir=_shm))
_metrics_dir.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)

# Admin model actions reach every worker through a record in one shared folder (model_control.py).
_own_control_dir = any(_settings.admin_keys) and _settings.control_dir is None
if _own_control_dir:
    _control_dir = Path(tempfile.mkdtemp(prefix="whisper_api-control-", dir=_shm))
    os.environ["WHISPER_API_CONTROL_DIR"] = str(_control_dir)

bind = _settings.bind
workers = _settings.effective_workers
worker_class = "whisper_api.worker.DrainingThreadWorker"  # gthread: /health answers while busy
threads = _settings.threads
timeout = _settings.timeout  # a long file must never be mistaken for a hung worker
graceful_timeout = _settings.graceful_timeout  # SIGTERM: requests in flight may finish
keepalive = 5
# Past WHISPER_API_MAX_CONNECTIONS the worker still accepts, to answer 503 at once and close
# (see whisper_api/worker.py); past this many more, connections wait in the kernel's backlog.
worker_connections = _settings.max_connections + 64
# Clients must not set WSGI variables: SCRIPT_NAME/PATH_INFO from a request header are ignored even
# from loopback (a proxy's prefix comes as X-Forwarded-Prefix, see WHISPER_API_TRUSTED_PROXIES).
forwarder_headers = ""
preload_app = False  # a CTranslate2 model loaded before fork() hangs in the child
worker_tmp_dir = "/dev/shm"
control_socket_disable = True  # one fixed socket path would collide between instances on a host
accesslog = None  # whisper_api writes its own line per request (logger "whisper_api.access")
errorlog = "-"
loglevel = _settings.log_level
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": _settings.log_level.upper(), "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": _settings.log_level.upper(), "propagate": False,
                           "handlers": ["console"]},
        # gunicorn logs access lines whenever logconfig_dict is set: ours replace them.
        "gunicorn.access": {"level": "WARNING", "propagate": False, "handlers": ["console"]},
        "faster_whisper": {"level": "WARNING"},
        "whisper_api.access": {"level": "DEBUG" if _settings.log_level.lower() == "debug" else "INFO",
                               "propagate": False, "handlers": ["access"]},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "message", "stream": "ext://sys.stdout"},
    },
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"},
        "message": {"format": "%(message)s"},
    },
}  # fmt: skip


def pre_fork(server, worker) -> None:  # noqa: ANN001 - gunicorn's Arbiter and Worker
    """Master: give the worker about to be forked a slot, and so a GPU (a replacement reuses one)."""
    _gpu_slots.retain(w.age for w in server.WORKERS.values())
    worker.whisper_slot = _gpu_slots.claim(worker.age)


def post_fork(server, worker) -> None:  # noqa: ANN001
    """Worker: take its slot's device before the app, torch or CUDA are loaded; bound its malloc
    arenas before its threads start."""
    from whisper_api.engine.memory import limit_arenas

    limit_arenas(_settings.malloc_arenas)
    gpu = _gpu_slots.gpu(worker.whisper_slot)
    os.environ.update(device_environment(gpu, os.environ))
    worker.log.info("worker slot %d uses %s", worker.whisper_slot, "CPU" if gpu is None else f"GPU {gpu}")


def worker_exit(server, worker) -> None:  # noqa: ANN001
    """Master (for a worker that vanished) or the worker itself: free its slot."""
    _gpu_slots.release(worker.age)
    control = getattr(worker, "whisper_control", None)
    if control is not None:
        control.stop()


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's Worker
    """Load the default model before this worker accepts its first request."""
    _quiet_onnxruntime()
    state = worker.wsgi.extensions["whisper_api"]
    try:
        state.registry.get(state.registry.default_name)
    except Exception as exc:  # noqa: BLE001 - any load failure must stop the server, loudly
        worker.log.error("cannot load model %r: %s", state.registry.default_name, exc)
        sys.exit(3)  # gunicorn's WORKER_BOOT_ERROR: the master stops instead of respawning
    if state.settings.preload_voice:
        try:
            state.voices.preload(state.settings.default_voice)
        except Exception as exc:  # noqa: BLE001 - speech is optional: transcription still serves
            worker.log.warning("text to speech unavailable: %s", exc)
    control = worker.wsgi.extensions.get("whisper_api.model_control")
    if control is not None:  # apply earlier admin actions, then follow new ones
        control.start()
        worker.whisper_control = control


def _quiet_onnxruntime() -> None:
    """ONNX Runtime (Silero VAD, Piper voices) ships Microsoft's telemetry client: off, air-gapped or not."""
    try:
        import onnxruntime
    except ImportError:
        return
    onnxruntime.disable_telemetry_events()


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    """Values left by an earlier run would be added to this one's: start from an empty folder."""
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's Arbiter and Worker
    """A dead worker's queue depth and loaded models no longer count (its counters still do); its
    GPU slot waits for its replacement."""
    _gpu_slots.release(worker.age)
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
    if _own_control_dir:
        shutil.rmtree(_control_dir, ignore_errors=True)
