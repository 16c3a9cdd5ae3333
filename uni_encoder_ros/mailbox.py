"""The node's keep-latest hand-over between the image callback and inference."""

from __future__ import annotations

import threading
from typing import Any


class Mailbox:
    """One-slot, thread-safe store of the newest item; putting over an untaken item counts a drop."""

    def __init__(self):
        self._lock = threading.Lock()
        self._item: Any = None
        self.dropped = 0

    def put(self, item: Any) -> None:
        """Store ``item``, replacing (and counting) any item not yet taken."""
        with self._lock:
            if self._item is not None:
                self.dropped += 1
            self._item = item

    def take(self) -> Any:
        """Remove and return the newest item, or None."""
        with self._lock:
            item, self._item = self._item, None
            return item
