"""Admin model actions that reach every gunicorn worker: a shared record each worker reconciles.

The admin API writes what it wants (`wanted.json`: per model, loaded or not and pinned or not,
under a generation number that grows with each action) into a folder all workers share. Every
worker watches that file, applies a new generation to its own registry, and reports its models and
what the action did in `worker-<pid>.json`. The answering worker waits until every live worker
reports the generation, and says per worker what happened. A worker started later applies the
latest record at once, so a replacement serves the same models as its siblings.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from whisper_api.engine.registry import ModelRegistry
from whisper_api.errors import ApiError

logger = logging.getLogger(__name__)

WANTED = "wanted.json"
ACTIONS = ("load", "unload", "pin", "unpin")
_POLL_SECONDS = 0.25
_REPORT_SECONDS = 2.0


class ModelControl:
    """This worker's side of the shared record: apply new generations, report its state."""

    def __init__(self, registry: ModelRegistry, folder: Path, pid: int | None = None) -> None:
        self.registry = registry
        self.folder = folder
        self.pid = pid or os.getpid()
        self._applied = 0
        self._results: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        folder.mkdir(parents=True, exist_ok=True)

    # --- the admin side ------------------------------------------------------------------------

    def request(self, name: str, action: str) -> int:
        """Record `action` on model `name` for every worker; the new generation."""
        with _locked(self.folder):
            wanted = read_wanted(self.folder)
            model = wanted["models"].setdefault(name, {})
            if action in ("load", "unload"):
                model["loaded"] = action == "load"
            else:
                model["pinned"] = action == "pin"
                if action == "pin":
                    model["loaded"] = True
            wanted["generation"] += 1
            wanted["last"] = {"model": name, "action": action}
            _write_json(self.folder / WANTED, wanted)
            return int(wanted["generation"])

    def reports(self) -> list[dict[str, Any]]:
        """The latest report of every live worker (reports of dead ones are removed)."""
        found = []
        for path in sorted(self.folder.glob("worker-*.json")):
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # being replaced right now
            if not _alive(int(report.get("pid", 0))):
                path.unlink(missing_ok=True)
                continue
            found.append(report)
        return found

    def wait_for(self, generation: int, timeout: float) -> list[dict[str, Any]]:
        """Every live worker's report once all have applied `generation`, or as they are at `timeout`."""
        give_up = time.monotonic() + timeout
        while True:
            reports = self.reports()
            if all(r["generation"] >= generation for r in reports) or time.monotonic() >= give_up:
                return reports
            time.sleep(_POLL_SECONDS / 2)

    # --- the worker side -----------------------------------------------------------------------

    def reconcile(self) -> None:
        """Apply the wanted record if it is newer than what this worker applied, then report."""
        with self._lock:
            wanted = read_wanted(self.folder)
            if wanted["generation"] > self._applied:
                self._apply(wanted)
                self._applied = int(wanted["generation"])
            self.report()

    def _apply(self, wanted: dict[str, Any]) -> None:
        """The latest action when this worker saw the one before; the whole record otherwise."""
        last = wanted.get("last") or {}
        models: dict[str, dict[str, Any]] = wanted["models"]
        if wanted["generation"] == self._applied + 1 and last.get("model") in models:
            models = {last["model"]: models[last["model"]]}
        for name, model in models.items():
            if "pinned" in model:
                self.registry.pin(name, bool(model["pinned"]))
            result = None
            if model.get("loaded") is True:
                result = self._load(name)
            elif model.get("loaded") is False:
                unloaded = self.registry.unload(name, "admin")
                busy = name in self.registry.loaded_names()
                result = "unloaded" if unloaded else ("busy: still in use" if busy else "not loaded")
            if name == last.get("model"):
                self._results = {name: result or ("pinned" if model.get("pinned") else "unpinned")}

    def _load(self, name: str) -> str:
        if name in self.registry.loaded_names():
            return "loaded"
        try:
            self.registry.get(name)
        except ApiError as exc:
            return f"error: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - one worker's failure is reported, not raised
            logger.exception("admin load of %s failed", name)
            return f"error: {type(exc).__name__}"
        return "loaded"

    def report(self) -> None:
        """Write this worker's state where the admin API reads it."""
        report = {
            "pid": self.pid,
            "generation": self._applied,
            "engine": self.registry.engine_name,
            "result": self._results,
            "updated": time.time(),
            "models": [asdict(state) for state in self.registry.states()],
        }
        _write_json(self.folder / f"worker-{self.pid}.json", report)

    def start(self) -> None:
        """Watch the record in a background thread (a worker calls this once it serves)."""
        if self._thread is not None:
            return
        self.reconcile()
        self._thread = threading.Thread(target=self._watch, name="model-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        (self.folder / f"worker-{self.pid}.json").unlink(missing_ok=True)

    def _watch(self) -> None:
        seen = _mtime(self.folder / WANTED)
        reported = time.monotonic()
        while not self._stop.wait(_POLL_SECONDS):
            try:
                now = _mtime(self.folder / WANTED)
                if now != seen or time.monotonic() - reported >= _REPORT_SECONDS:
                    seen = now
                    self.reconcile()
                    reported = time.monotonic()
            except Exception:  # the watcher must outlive one bad round
                logger.exception("model control round failed")


def read_wanted(folder: Path) -> dict[str, Any]:
    try:
        wanted = json.loads((folder / WANTED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"generation": 0, "models": {}}
    return wanted


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One admin action at a time across workers (a flock on the folder's lock file)."""
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` atomically: readers see the old record or the new one, never half."""
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
