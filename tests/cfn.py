"""Reading CloudFormation templates in tests: YAML with the short-form tags (!Ref, !Sub...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    """Reads each short-form tag as its long form (`!If x` -> `{"Fn::If": x}`, `!Ref x` ->
    `{"Ref": x}`), so a template reads the same whichever form it is written in."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)  # PyYAML has no fourth kind of node
    return {name: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)
