"""Stopping a worker politely: SIGTERM, SIGINT (Ctrl-C) or the death of the search process.

A stop request must give the current candidate back (same choices, not a failure) and end the
worker within seconds, without ever cutting a write to the storage in half. So the signal
handler only *records* the request, except while the worker evaluates a candidate (inside
:meth:`StopRequest.interruptible`): there it raises :class:`StopWorker` at once, so a
minutes-long training run does not delay the stop. ``StopWorker`` derives from
``BaseException``: the trainer's ``except Exception`` ("never let a candidate crash the
search") and every other broad handler let it through. It is raised at most once; a second
signal while the candidate is being given back is only recorded.

The worker checks :attr:`StopRequest.requested` between candidates and stops there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopWorker(BaseException):
    """Raised inside a candidate's evaluation when the worker is asked to stop.

    A BaseException (like KeyboardInterrupt) so that no ``except Exception`` swallows it."""

    def __init__(self, reason: str, signum: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.signum = reason, signum


class StopRequest:
    """Whether (and why) this worker was asked to stop; raises only where that is safe."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.signum: int | None = None
        self._armed = False

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str, signum: int | None = None) -> None:
        """Record a stop; inside :meth:`interruptible` (and only the first time) raise it."""
        if self.reason is not None:
            return
        self.reason, self.signum = reason, signum
        if self._armed:
            self._armed = False
            raise StopWorker(reason, signum)

    def check(self) -> None:
        """Raise StopWorker if a stop was requested."""
        if self.reason is not None:
            raise StopWorker(self.reason, self.signum)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A stretch of pure computation (no storage writes) that a stop may cut short."""
        self.check()
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.request(signal.Signals(signum).name, signum)

    @contextlib.contextmanager
    def installed(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
        """Handle ``signals`` with this request while the block runs (main thread only; a
        signal the process was told to ignore, e.g. SIGINT under ``nohup ... &``, stays
        ignored). The previous handlers come back afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {}
        for s in signals:
            if signal.getsignal(s) is not signal.SIG_IGN:
                previous[s] = signal.signal(s, self._on_signal)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def watch_parent(self, parent_pid: int, interval: float = 1.0) -> threading.Thread:
        """Stop (as SIGTERM would) once the process ``parent_pid`` is no longer our parent.

        The watcher sends SIGTERM to this process, so the main thread handles it like any other
        stop; without a SIGTERM handler the default action ends the process, which is also
        right for an orphan."""

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(interval)
            os.kill(os.getpid(), signal.SIGTERM)

        thread = threading.Thread(target=watch, daemon=True, name="tgsage-parent-watch")
        thread.start()
        return thread


__all__ = ["STOP_SIGNALS", "StopRequest", "StopWorker"]
