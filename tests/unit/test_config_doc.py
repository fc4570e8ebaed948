"""docs/configuration.md documents every setting of the model."""

from __future__ import annotations

from pathlib import Path

from liferaft.config.doc import documented_block, render_block, rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_doc_table_is_generated_from_the_model() -> None:
    assert documented_block(DOC) == render_block(), (
        "docs/configuration.md is out of date: run `python -m liferaft.config doc`"
    )


def test_every_setting_has_a_help_text_and_is_listed() -> None:
    text = DOC.read_text()
    for key, _type, _default, description in rows():
        assert description.strip(), f"setting {key} has no description"
        assert f"`{key}`" in text
