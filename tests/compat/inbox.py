"""Messages a client's callback receives, kept in arrival order and searched by predicate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any


class Inbox:
    """A thread-safe record of every message a WebSocket client handed its callback."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._changed = threading.Condition()

    def put(self, message: Any) -> None:
        """Record ``message`` (JSON text is decoded; objects are kept as they are)."""
        if isinstance(message, str | bytes):
            message = json.loads(message)
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait_for(self, want: Callable[[Any], bool], timeout_s: float = 10) -> Any:
        """The first message ``want`` accepts, waiting up to ``timeout_s`` for it to arrive."""
        end = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for message in self.messages:
                    if want(message):
                        return message
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such message in {len(self.messages)}: {self.messages[-5:]!r}")
                self._changed.wait(left)
