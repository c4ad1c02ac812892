"""Live progress: a line per step of a deploy or rollback, printed as the step starts.

Commands never print (result.py); steps are events instead, handed to the sink the command line
installed for the whole run (`reporting`): text on stderr for a person, JSON lines on stdout for
`--json-lines` (the host tool runs with that, and the operator's integrator renders the events
it reads from the host as they arrive: targets/transport.py), nothing for `--json`.
Without a sink (tests, library use) a step is a no-op.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, Callable, TextIO

Event = dict[str, Any]
Sink = Callable[[Event], None]
STEP = "step"  # the "event" of a step line; the last line of --json-lines is the result

_sinks: list[Sink] = []


@contextlib.contextmanager
def reporting(sink: Sink | None) -> Iterator[None]:
    """Send the steps of everything run inside to `sink` (None: nowhere)."""
    if sink is None:
        yield
        return
    _sinks.append(sink)
    try:
        yield
    finally:
        _sinks.remove(sink)


def step(name: str, detail: str = "") -> None:
    """`name` starts now (the same names the deploy lock records and `status` shows)."""
    event: Event = {"event": STEP, "step": name}
    if detail:
        event["detail"] = detail
    forward(event)


def forward(event: Event) -> None:
    """Hand on an event, ours or one read from a remote host's tool."""
    if _sinks and event.get("event") == STEP:
        _sinks[-1](event)


def text_sink(out: TextIO | None = None) -> Sink:
    """`integrator:   1.2 s  unpack`: seconds since the run started, on stderr."""
    start = time.monotonic()

    def write(event: Event) -> None:
        stream = out or sys.stderr
        detail = f" ({event['detail']})" if event.get("detail") else ""
        stream.write(f"integrator: {time.monotonic() - start:6.1f} s  {event['step']}{detail}\n")
        stream.flush()

    return write


def json_lines_sink(out: TextIO | None = None) -> Sink:
    """One compact JSON object per line on stdout, with `t`: seconds since the run started."""
    start = time.monotonic()

    def write(event: Event) -> None:
        stream = out or sys.stdout
        line = {**event, "t": round(time.monotonic() - start, 3)}
        stream.write(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")
        stream.flush()

    return write
