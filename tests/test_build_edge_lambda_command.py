"""`manage.py build_edge_lambda`: a missing output directory is a
one-line CommandError, and nothing is created."""

from __future__ import annotations

import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command


def test_a_missing_output_directory_is_refused_and_not_created(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.zip"
    with pytest.raises(CommandError, match="does not exist") as info:
        call_command("build_edge_lambda", "--output", str(target))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "nonexistent").exists()


def test_an_existing_directory_gets_the_zip(tmp_path: Path) -> None:
    out = StringIO()
    call_command("build_edge_lambda", "--output", str(tmp_path / "edge.zip"), stdout=out)
    with zipfile.ZipFile(tmp_path / "edge.zip") as archive:
        assert "handler.py" in " ".join(archive.namelist())
    assert "wrote" in out.getvalue()
