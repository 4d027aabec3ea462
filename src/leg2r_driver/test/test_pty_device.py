"""PtyDevice.close must not pull the descriptors from under a serving thread that is still busy."""

from __future__ import annotations

import threading
import time

from leg2r_driver.pty_device import PtyDevice


class _SlowDevice(PtyDevice):
    """Spends 1.5 s on each request (longer than any short join) before reading the next."""

    def __init__(self) -> None:
        self._open_pty()
        self.busy = threading.Event()
        self._start_serving("slow-device")

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.busy.set()
            time.sleep(1.5)
            if self._read_exact(1) is None:
                return


def test_close_waits_for_a_busy_serving_thread(monkeypatch):
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    device = _SlowDevice()
    assert device.busy.wait(1.0)
    device.close()
    assert not device._thread.is_alive()
    assert errors == []
