"""What every command returns, and the one place it is printed.

Commands build a `Result` (lines for a person, data for scripts, an exit code); `emit`
renders it as text or, with `--json`, as one JSON object (with `--json-lines`, as the last line
of the stream of step events, host/progress.py). Commands never print directly,
so every command is scriptable and its output is tested without capturing stdout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .errors import EXIT_OK, IntegratorError

EXIT_INTERRUPTED = 130  # what a shell reports after Ctrl-C
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command killed by SIGPIPE
RESULT = "result"  # the "event" of the last line of --json-lines


@dataclass
class Result:
    """Outcome of one command: `lines` for people, `data` for `--json`."""

    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_OK
    warnings: list[str] = field(default_factory=list)

    def say(self, line: str = "") -> Result:
        self.lines.append(line)
        return self

    def warn(self, line: str) -> Result:
        self.warnings.append(line)
        return self


def emit(
    result: Result,
    *,
    as_json: bool = False,
    json_lines: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print `result` and return its exit code; warnings go to stderr so stdout stays clean."""
    out = out or sys.stdout
    err = err or sys.stderr
    if as_json or json_lines:
        payload = dict(result.data)
        payload.setdefault("ok", result.exit_code == EXIT_OK)
        payload.setdefault("exit_code", result.exit_code)
        if result.warnings:
            payload.setdefault("warnings", result.warnings)
        _dump(payload, out, json_lines)
    else:
        for warning in result.warnings:
            err.write(f"warning: {warning}\n")
        for line in result.lines:
            out.write(line + "\n")
    out.flush()
    return result.exit_code


def _dump(payload: dict[str, Any], out: TextIO, json_lines: bool) -> None:
    """Indented for `--json`; one line, marked as the result, as the end of `--json-lines`."""
    if json_lines:
        line = {**payload, "event": RESULT}
        out.write(json.dumps(line, sort_keys=True, default=str, separators=(",", ":")) + "\n")
    else:
        json.dump(payload, out, indent=2, sort_keys=True, default=str)
        out.write("\n")


def emit_error(message: str, exit_code: int, *, as_json: bool = False, json_lines: bool = False) -> int:
    """The single path for user errors: one line on stderr (or a JSON object on stdout)."""
    if as_json or json_lines:
        _dump({"ok": False, "exit_code": exit_code, "error": message}, sys.stdout, json_lines)
        sys.stdout.flush()
    else:
        sys.stderr.write(f"integrator: error: {message}\n")
    return exit_code


def run_command_line(command: Callable[[], Result], ns: Any) -> int:
    """The end of every command line (integrator's, a bundle's, the host tool's): the steps of a
    deploy go to the sink that matches the output (host/progress.py), then `run_and_emit`."""
    from .host.progress import json_lines_sink, reporting, text_sink

    as_json, json_lines = bool(getattr(ns, "json", False)), bool(getattr(ns, "json_lines", False))
    sink = json_lines_sink() if json_lines else None if as_json else text_sink()
    with reporting(sink):
        return run_and_emit(command, as_json=as_json, json_lines=json_lines)


def run_and_emit(command: Callable[[], Result], *, as_json: bool, json_lines: bool = False) -> int:
    """Run one command and print its outcome: the only place user errors become messages and exit codes.

    Both front doors (the `integrator` CLI and a bundle's own entry point) end here. Any other
    exception is a bug and keeps its traceback.
    """
    try:
        result = command()
        if not isinstance(result, Result):  # a command module broke the contract: a bug, not user error
            raise TypeError(f"a command returned {type(result).__name__}, not Result")
        return emit(result, as_json=as_json, json_lines=json_lines)
    except IntegratorError as exc:
        return emit_error(exc.message, exc.exit_code, as_json=as_json, json_lines=json_lines)
    except KeyboardInterrupt:
        return emit_error("interrupted", EXIT_INTERRUPTED, as_json=as_json, json_lines=json_lines)
    except BrokenPipeError:
        # the reader went away (`integrator render | head`): no traceback; point stdout at /dev/null
        # so that the interpreter's last flush at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
