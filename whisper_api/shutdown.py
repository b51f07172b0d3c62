"""Set once this process has been asked to stop (gunicorn's SIGTERM), for long-lived connections.

A WebSocket session never ends by itself the way a request does; it watches this flag, sends its
last transcript and closes, so the worker can exit within the graceful timeout. Light on purpose:
the gunicorn worker class imports it.
"""

from __future__ import annotations

import threading

DRAINING = threading.Event()
