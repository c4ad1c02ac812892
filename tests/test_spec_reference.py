"""docs/spec.md is what the declarations (spec/model.py) say: every table and key with its type,
default, bounds or choices and help. After declaring a field, regenerate it:
`.venv/bin/python -m integrator.spec.reference docs/spec.md`."""

from __future__ import annotations

from pathlib import Path

from integrator.spec import ServiceSpec
from integrator.spec.declare import tables
from integrator.spec.reference import reference

DOC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"


def test_the_committed_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == reference(), (
        "docs/spec.md is stale: run `.venv/bin/python -m integrator.spec.reference docs/spec.md`"
    )


def test_every_declared_key_is_in_it_with_its_help_and_bounds() -> None:
    text = reference()
    for table in tables(ServiceSpec):
        assert f"## [{table.name}]" in text
        for key in table.keys:
            row = next((line for line in text.splitlines() if line.startswith(f"| `{key.name}` |")), None)
            if key.free:
                assert key.help in text, key.label
                continue
            assert row is not None and key.help.replace("|", "\\|") in row, key.label
            for bound in (key.low, key.high):
                assert bound is None or str(bound) in row, key.label
            assert all(f'`"{choice}"`' in row for choice in key.choices), key.label
            assert ("**required**" in row) == key.is_required, key.label
