"""docs/aws-fidelity.md cannot drift from the tests it cites.

Each row names the test that pins its behaviour; a renamed or deleted test would leave a
row that promises a check nobody runs. Every `path.py` and `path.py::test_name` it cites
must exist.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITED = re.compile(r"((?:localdev/tests|edge_lambda/tests|tests)/[\w/]+\.py)(?:::(\w+))?")


def test_every_test_the_fidelity_table_cites_exists() -> None:
    doc = (ROOT / "docs" / "aws-fidelity.md").read_text(encoding="utf-8")
    cited = set(CITED.findall(doc))
    assert len(cited) > 20, "the table lost its test column"
    missing = []
    for path, name in sorted(cited):
        source = ROOT / path
        if not source.exists():
            missing.append(path)
        elif name and not re.search(rf"^\s*(?:async )?def {name}\b", source.read_text(
                encoding="utf-8"), re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert missing == [], "docs/aws-fidelity.md cites tests that do not exist"
