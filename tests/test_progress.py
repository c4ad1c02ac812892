"""Live progress (issue 10 item 7): step events, how they are printed, and how a remote host's
steps reach the operator while the host is still working."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from integrator.host import progress
from integrator.host.progress import json_lines_sink, reporting, step, text_sink
from integrator.result import Result, emit
from integrator.targets.remote import exchange
from integrator.targets.transport import StepLines, result_from_json


def test_steps_go_to_the_sink_of_the_run_and_nowhere_without_one() -> None:
    seen: list[dict[str, object]] = []
    step("ignored")  # no sink: nothing, no error
    with reporting(seen.append):
        step("unpack")
        step("send", "ssh root@web1, 12.3 MB")
        progress.forward({"event": "result", "ok": True})  # not a step: not shown
    step("after")
    assert seen == [
        {"event": "step", "step": "unpack"},
        {"event": "step", "step": "send", "detail": "ssh root@web1, 12.3 MB"},
    ]


def test_text_and_json_lines_renderings() -> None:
    text, lines = io.StringIO(), io.StringIO()
    with reporting(text_sink(text)):
        step("venv")
    with reporting(json_lines_sink(lines)):
        step("health", "https://127.0.0.1:443/healthz")
    assert text.getvalue().startswith("integrator: ") and text.getvalue().endswith(" s  venv\n")
    event = json.loads(lines.getvalue())
    assert event.pop("t") >= 0
    assert event == {"event": "step", "step": "health", "detail": "https://127.0.0.1:443/healthz"}


def test_json_lines_ends_with_the_result_on_one_line() -> None:
    out = io.StringIO()
    emit(Result(data={"service": "shop"}, lines=["deployed"]), json_lines=True, out=out)
    assert out.getvalue().count("\n") == 1
    assert json.loads(out.getvalue()) == {"event": "result", "exit_code": 0, "ok": True, "service": "shop"}


# The host tool's stdout, as a remote deploy writes it: a step, then (only once the operator has
# seen that step, or after 10 s) the result. Were the steps read only at the end, it would wait.
HOST = """
import json, os, sys, time
print(json.dumps({"event": "step", "step": "unpack", "t": 0.1}), flush=True)
deadline = time.monotonic() + 10
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.01)
seen = os.path.exists(sys.argv[1])
print(json.dumps({"event": "result", "ok": True, "exit_code": 0, "seen_live": seen}), flush=True)
"""


def test_a_remote_hosts_steps_are_shown_while_it_works(tmp_path: Path) -> None:
    flag = tmp_path / "seen"
    seen: list[dict[str, object]] = []

    def sink(event: dict[str, object]) -> None:
        seen.append(event)
        flag.touch()

    with reporting(sink):
        proc = exchange([sys.executable, "-c", HOST, str(flag)], iter(()), 30, "test host", StepLines())
    assert seen == [{"event": "step", "step": "unpack", "t": 0.1}]
    result = result_from_json(proc.stdout.decode(), proc.stderr.decode())
    assert result.data == {"seen_live": True} and result.exit_code == 0
