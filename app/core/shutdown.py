"""Telling responses that only end when told to (event streams) that the server is stopping.

uvicorn's graceful stop (SIGTERM or SIGINT) closes the listening sockets, then waits for the
responses in flight to finish, up to GRACEFUL_SHUTDOWN_SECONDS, and tells the application
nothing before they have: the lifespan's shutdown comes after. An open stream would hold the
stop for the whole grace period and then be cut. So the lifespan puts a handler in front of
the server's own: it schedules the application's callback on the event loop, then hands the
signal to the server's handler, which starts its graceful stop as before.
"""

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Runs `callback` on the running event loop whenever SIGTERM or SIGINT arrives, before the
    signal's previous handler; returns what puts the previous handlers back. Outside the main
    thread no handler can be installed (nor could the server's be): nothing is done there."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        if not loop.is_closed():
            # In a signal handler, between any two bytecodes of the loop's own work.
            loop.call_soon_threadsafe(callback)
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:  # nobody handled it before: what it would have done
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for signum in STOP_SIGNALS:
        previous[signum] = signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is handle and handler is not None:
                signal.signal(signum, handler)

    return restore
