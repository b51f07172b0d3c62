"""The gunicorn worker class: gthread, plus a SIGTERM that turns new connections away at once."""

from __future__ import annotations

from types import FrameType

from gunicorn.workers.gthread import ThreadWorker

from whisper_api import shutdown


class DrainingThreadWorker(ThreadWorker):
    """On SIGTERM, close this worker's copy of the listening sockets, then drain as gthread does.

    Every worker holds the listening socket inherited from the master. gthread stops accepting on
    SIGTERM but keeps that descriptor until its in-flight requests are done, so the kernel keeps
    completing handshakes nobody will serve: clients hang instead of being refused (and retried
    elsewhere by their load balancer). Closing it at once makes the port refuse new connections
    while the requests already accepted finish within the graceful timeout.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.method_queue.defer(self._close_listeners)  # on the main loop, not in the signal handler

    def _close_listeners(self) -> None:
        shutdown.DRAINING.set()  # open WebSocket sessions finish their last utterance and close
        self.set_accept_enabled(False)
        for listener in self.sockets:
            listener.close()
