"""The gunicorn worker class: gthread, hardened for clients reached directly (no proxy in front).

- A request's head is read by the worker's event loop, without a thread: a client that sends
  half a head (or nothing) holds no thread, and gets a 408 after WHISPER_API_HEADER_TIMEOUT.
- Once its head is complete a request gets a thread; its body must then arrive at
  WHISPER_API_MIN_BODY_RATE on average (after WHISPER_API_BODY_TIMEOUT of grace), else 408.
- `/health`, `/ready` and `/metrics` run on threads of their own, so probes are answered while
  every request thread is busy.
- Past WHISPER_API_MAX_CONNECTIONS open connections, a new one gets a 503 at once and is closed.
- Every answer gunicorn itself writes (malformed requests) is OpenAI's JSON error with a 4xx.
- On SIGTERM the listening sockets close at once, then requests in flight finish.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections import deque
from concurrent import futures
from functools import partial
from types import FrameType
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

from whisper_api import shutdown
from whisper_api.config import Settings
from whisper_api.errors import ApiError, RequestTimeoutError, TooManyConnectionsError
from whisper_api.pacing import PacedSocket
from whisper_api.protocol import error_bytes, is_client_mistake, protocol_error

#: Requests served by the probe threads (never transcriptions, never a body worth reading).
PROBE_PATHS = frozenset({b"/health", b"/ready", b"/metrics"})
PROBE_THREADS = 2
#: The largest request head read before the request goes to a thread (gunicorn then applies its
#: own limits on line and header sizes, answered as 414/431).
MAX_HEAD_BYTES = 256 * 1024
_HEAD_END = (b"\r\n\r\n", b"\n\n")


class HeadReader:
    """Bytes of a request head received so far, and when it must be complete."""

    def __init__(self, deadline: float) -> None:
        self.data = bytearray()
        self.deadline = deadline

    @property
    def complete(self) -> bool:
        return any(end in self.data for end in _HEAD_END) or len(self.data) > MAX_HEAD_BYTES

    def is_probe(self) -> bool:
        """`GET`/`HEAD` of a probe path without a body: served by the probe threads (a body, even
        a slow one, could otherwise hold a probe thread)."""
        head = bytes(self.data).lstrip(b"\r\n")
        line = head.split(b"\r\n", 1)[0].split(b" ")
        if len(line) < 2 or line[0] not in (b"GET", b"HEAD"):
            return False
        lowered = head.lower()
        if b"\ntransfer-encoding:" in lowered or (
            b"\ncontent-length:" in lowered and b"\ncontent-length: 0\r" not in lowered
        ):
            return False
        return line[1].split(b"?", 1)[0] in PROBE_PATHS


class DrainingThreadWorker(ThreadWorker):
    """gthread with heads read off-thread, probe threads, a body rate, a connection cap, JSON errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = Settings.from_env()
        self.heading: deque[TConn] = deque()  # ordered by deadline: every head gets the same time
        self.probe_pool: futures.ThreadPoolExecutor | None = None

    def init_process(self) -> None:
        self.probe_pool = futures.ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="probe")
        super().init_process()

    # --- connections: accept, read the head off-thread, hand it to a thread ---------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        if self.nr_conns > self.limits.max_connections:
            self._refuse(conn, TooManyConnectionsError(
                "The server has too many open connections. Please retry after a short wait.",
                headers={"Retry-After": "1"},
            ))  # fmt: skip
            return
        self._await_head(conn)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection starts its next request: read its head off-thread too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn)

    def _await_head(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.head = HeadReader(time.monotonic() + self.limits.header_timeout)
        self.heading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _on_head_readable(self, conn: TConn, client: socket.socket) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client left before sending a request
            self._stop_heading(conn)
            self._close(conn)
            return
        conn.head.data += data
        if conn.head.complete:
            self._stop_heading(conn)
            conn.data_ready = True
            self.enqueue_req(conn)

    def _stop_heading(self, conn: TConn) -> None:
        self.heading.remove(conn)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def murder_pending(self) -> None:
        """Also: heads past their deadline get a 408; on shutdown, unstarted requests are closed."""
        super().murder_pending()
        now = time.monotonic()
        while self.heading and (not self.alive or self.heading[0].head.deadline <= now):
            conn = self.heading[0]
            self._stop_heading(conn)
            if not self.alive:
                self._close(conn)  # stopping: it sent no complete request, a retry goes elsewhere
            else:
                self._refuse(conn, RequestTimeoutError(
                    "The request head was not received in time (see WHISPER_API_HEADER_TIMEOUT)."
                ))  # fmt: skip

    def _refuse(self, conn: TConn, error: ApiError) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(error_bytes(error))  # small: fits the socket buffer, never blocks
        self._close(conn)

    def _close(self, conn: TConn) -> None:
        self.nr_conns -= 1
        util.close(conn.sock)

    def enqueue_req(self, conn: TConn) -> None:
        head = getattr(conn, "head", None)
        pool = self.probe_pool if head is not None and head.is_probe() else self.tpool
        future = pool.submit(self.handle, conn)
        future.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    # --- a thread serves the request ---------------------------------------------------------------

    def handle(self, conn: TConn) -> Any:
        head = getattr(conn, "head", None)
        if head is not None:
            conn.head = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(head.data))
        unreader = getattr(conn.parser, "unreader", None)
        if unreader is not None:
            if not isinstance(unreader.sock, PacedSocket):
                unreader.sock = PacedSocket(conn.sock, self.limits.body_timeout, self.limits.min_body_rate)
            unreader.sock.restart()
        return super().handle(conn)

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        try:
            return super()._keepalive_after(conn, keepalive)
        except ApiError:  # the rest of the body came too slowly: the answer is out, just close
            return False

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """gunicorn's answer to a request it could not read, as OpenAI's JSON (4xx if the client's)."""
        error = protocol_error(exc)
        if is_client_mistake(exc):
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], error.message)
        else:
            self.log.exception("Error handling request")
        try:
            util.write_nonblock(client, error_bytes(error))
        except Exception:  # noqa: BLE001 - the client may be gone already
            self.log.debug("Failed to send error message.")

    # --- SIGTERM -----------------------------------------------------------------------------------

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.method_queue.defer(self._close_listeners)  # on the main loop, not in the signal handler

    def _close_listeners(self) -> None:
        """Every worker holds the listening socket inherited from the master. gthread stops
        accepting on SIGTERM but keeps that descriptor until its in-flight requests are done, so
        the kernel keeps completing handshakes nobody will serve: clients hang instead of being
        refused (and retried elsewhere by their load balancer). Closing it at once makes the port
        refuse new connections while the requests already accepted finish."""
        shutdown.DRAINING.set()  # open WebSocket sessions finish their last utterance and close
        self.set_accept_enabled(False)
        for listener in self.sockets:
            listener.close()
