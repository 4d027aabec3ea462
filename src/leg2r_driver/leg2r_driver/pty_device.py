"""The device side of a pseudo-terminal pair (os.openpty, raw mode) served by a daemon thread:
the common part of the simulated serial devices (BNO055, the StochLite's B3M bus).

The host side is ``port_name``, opened by the real driver code as if it were the device's port.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from abc import ABC, abstractmethod


class PtyDevice(ABC):
    """Subclasses call :meth:`_open_pty` before, and :meth:`_start_serving` after, their own
    set-up, and implement ``_serve`` (it runs until :meth:`close`, reading with
    :meth:`_read_exact`)."""

    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port_name = os.ttyname(self._slave)
        self._stop = threading.Event()

    def _start_serving(self, thread_name: str) -> None:
        self._thread = threading.Thread(target=self._serve, name=thread_name, daemon=True)
        self._thread.start()

    @abstractmethod
    def _serve(self) -> None:
        """Answer the host until :meth:`close` (runs in the serving thread)."""

    def _read_exact(self, count: int) -> bytes | None:
        """``count`` bytes from the host; None once closed (or the pty failed)."""
        data = b""
        while len(data) < count:
            if self._stop.is_set():
                return None
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if ready:
                    data += os.read(self._master, count - len(data))
            except (OSError, ValueError):
                return None
        return data

    def close(self) -> None:
        self._stop.set()
        # The descriptors must outlive the serving thread (it polls _stop every 50 ms), else a busy
        # thread selects on a closed -- or already reused -- descriptor. A thread still blocked
        # after 5 s (a write nobody reads) keeps its descriptors until the process exits.
        self._thread.join(timeout=5.0)
        if self._thread.is_alive():
            return
        os.close(self._master)
        os.close(self._slave)
