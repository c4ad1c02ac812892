"""Signals during a deploy or rollback: Ctrl-C, SIGTERM (a supervisor, `kill`) and SIGHUP (an ssh
session that dropped) become an exception, so the restore runs instead of the process dying
between "the unit points at the new release" and "put the old one back".

Inside `interruptible()` each of them raises `Interrupted`. Once a restore (or the commit of a
release that passed its health check) has begun, `hold_signals()` notes further signals instead:
a second Ctrl-C must not abort the restore. Outside the main thread nothing changes (Python
delivers signals to the main thread only).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; a KeyboardInterrupt, so everything that handles Ctrl-C handles it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


def signal_name(exc: BaseException) -> str:
    """SIGINT, SIGTERM or SIGHUP for an interruption (a plain KeyboardInterrupt is Ctrl-C)."""
    return exc.name if isinstance(exc, Interrupted) else "SIGINT"


def signal_number(exc: BaseException) -> int:
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


def _raise(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


class _Holder:
    """A handler that only notes which signals arrived."""

    def __init__(self) -> None:
        self.held: list[str] = []

    def __call__(self, signum: int, _frame: object) -> None:
        self.held.append(signal.Signals(signum).name)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def interruptible() -> Iterator[None]:
    """Within: SIGINT, SIGTERM and SIGHUP raise `Interrupted`. The handlers found come back after."""
    if not _in_main_thread():
        yield
        return
    saved: dict[int, Any] = {s: signal.signal(s, _raise) for s in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def hold_signals() -> list[str]:
    """From now to the end of `interruptible()`, note those signals instead of acting on them.

    Returns the list their names are added to (the same list when called again). Outside
    `interruptible()` it changes nothing: a caller's own handlers are not ours to replace.
    """
    if not _in_main_thread():
        return []
    handler = signal.getsignal(signal.SIGTERM)
    if isinstance(handler, _Holder):
        return handler.held
    if handler is not _raise:
        return []
    holder = _Holder()
    for signum in SIGNALS:
        signal.signal(signum, holder)
    return holder.held


@contextmanager
def held() -> Iterator[None]:
    """Hold those signals for a block (a repair must finish), then act on the first one noted."""
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) is not _raise:
        yield
        return
    holder = _Holder()
    for signum in SIGNALS:
        signal.signal(signum, holder)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is holder:  # not made permanent meanwhile
            for signum in SIGNALS:
                signal.signal(signum, _raise)
    if holder.held:
        raise Interrupted(signal.Signals[holder.held[0]])
