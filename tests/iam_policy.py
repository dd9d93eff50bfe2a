"""A small IAM policy evaluator for tests: the app's policies as CloudFormation would deploy
them (intrinsics resolved with given parameters), and the decision IAM makes for one request
(action, resource ARN, request context).

It implements the parts of IAM's identity-policy logic the app's policies use: an explicit
Deny wins, then any Allow, else the implicit deny; Action/NotAction and Resource/NotResource
with `*`/`?` wildcards (case-insensitive actions, case-sensitive ARNs); Condition blocks
(every operator and every key must match: AND across, OR within a key's values) with
StringEquals, StringNotEquals, StringLike, StringNotLike, Null and Bool, and the
ForAllValues:/ForAnyValue: set prefixes. A key absent from the request context makes the
positive operators false and the negated ones true; ForAllValues over an absent key is true,
ForAnyValue false (IAM User Guide, "Condition operators" and "Multivalued context keys").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from tests.cfn import load_template

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
PARTITION = "aws"
NO_VALUE = object()


# ---------------------------------------------------------------- templates as deployed

def _resolve(node: Any, ctx: dict[str, Any], conditions: dict[str, bool]) -> Any:
    if isinstance(node, list):
        items = [_resolve(n, ctx, conditions) for n in node]
        return [i for i in items if i is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            if value == "AWS::NoValue":
                return NO_VALUE
            return ctx[value]
        if key == "Fn::Sub":
            text, extra = (value, {}) if isinstance(value, str) else value
            names = {**ctx, **{k: _resolve(v, ctx, conditions) for k, v in extra.items()}}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(names[m.group(1)]), text)
        if key == "Fn::GetAtt":
            target = value if isinstance(value, str) else ".".join(value)
            return ctx[target]
        if key == "Fn::If":
            name, yes, no = value
            return _resolve(yes if conditions[name] else no, ctx, conditions)
        if key == "Fn::Join":
            sep, parts = value
            return sep.join(_resolve(parts, ctx, conditions))
    return {k: v for k, v in ((k, _resolve(v, ctx, conditions)) for k, v in node.items())
            if v is not NO_VALUE}


def _condition(node: Any, ctx: dict[str, Any], conditions: dict[str, bool]) -> bool:
    ((key, value),) = node.items()
    if key == "Fn::Equals":
        a, b = (_resolve(v, ctx, conditions) for v in value)
        return bool(a == b)
    if key == "Fn::Not":
        return not _condition(value[0], ctx, conditions)
    if key == "Fn::And":
        return all(_condition(v, ctx, conditions) for v in value)
    if key == "Fn::Or":
        return any(_condition(v, ctx, conditions) for v in value)
    if key == "Condition":
        return conditions[value]
    raise AssertionError(f"condition function {key} not handled")


def physical_ids(template: dict[str, Any]) -> dict[str, str]:
    """What Ref / GetAtt give for the resources the policies name (fake, well-formed)."""
    ids: dict[str, str] = {}
    for name, resource in (template.get("Resources") or {}).items():
        kind = resource["Type"]
        if kind == "AWS::CloudFront::Distribution":
            ids[name] = "EPLATFORM" + name.upper()[:8]
        elif kind == "AWS::CloudFront::ConnectionGroup":
            ids[f"{name}.Arn"] = (f"arn:{PARTITION}:cloudfront::{ACCOUNT}:"
                                  f"connection-group/cg_platform{name.lower()}")
            ids[f"{name}.Id"] = f"cg_platform{name.lower()}"
        else:
            ids[name] = f"{name.lower()}-id"
    return ids


def deployed_statements(path: Path, **parameters: str) -> list[dict[str, Any]]:
    """The statements of every IAM managed policy in `path`, as deployed with `parameters`
    (defaults for the rest)."""
    template = load_template(path)
    ctx: dict[str, Any] = {"AWS::Partition": PARTITION, "AWS::AccountId": ACCOUNT,
                           "AWS::Region": "us-east-1", "AWS::StackName": path.stem}
    for name, spec in (template.get("Parameters") or {}).items():
        ctx[name] = parameters.get(name, spec.get("Default", f"param-{name}"))
    ctx.update(physical_ids(template))
    conditions: dict[str, bool] = {}
    for name, spec in (template.get("Conditions") or {}).items():
        conditions[name] = _condition(spec, ctx, conditions)
    statements: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        document = _resolve(resource["Properties"]["PolicyDocument"], ctx, conditions)
        statements.extend(document["Statement"])
    return statements


def app_statements(*, per_domain: bool = False) -> list[dict[str, Any]]:
    """What control-plane.yaml's task role carries: app-iam-policy.yaml's policy and
    saas-manager.yaml's tenant policy (it imports both)."""
    return (deployed_statements(ROOT / "deploy" / "app-iam-policy.yaml",
                                PerDomainStrategy="true" if per_domain else "false")
            + deployed_statements(ROOT / "deploy" / "saas-manager.yaml"))


# ---------------------------------------------------------------- evaluation

@dataclass
class Request:
    action: str
    resource: str
    request_tags: dict[str, str] = field(default_factory=dict)
    resource_tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str | list[str]] = field(default_factory=dict)

    def context(self) -> dict[str, list[str]]:
        keys: dict[str, list[str]] = {}
        for k, v in self.request_tags.items():
            keys[f"aws:RequestTag/{k}"] = [v]
        if self.request_tags:
            keys["aws:TagKeys"] = list(self.request_tags)
        for k, v in self.resource_tags.items():
            keys[f"aws:ResourceTag/{k}"] = [v]
        for k, v in self.extra.items():
            keys[k] = [v] if isinstance(v, str) else list(v)
        return {k.lower(): v for k, v in keys.items()}


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _string_match(operator: str, actual: str, wanted: str) -> bool:
    if operator in ("StringEquals", "StringNotEquals", "Bool"):
        return actual == wanted
    if operator in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() == wanted.lower()
    if operator in ("StringLike", "StringNotLike"):
        return fnmatchcase(actual, wanted)
    raise AssertionError(f"condition operator {operator} not handled")


def _condition_holds(operator: str, key: str, wanted: list[str],
                     context: dict[str, list[str]]) -> bool:
    actual = context.get(key.lower())
    if operator == "Null":
        (flag,) = wanted
        return (actual is None) == (str(flag).lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    negated = "Not" in base
    if qualifier == "ForAllValues":
        if actual is None:
            return True
        return all(any(_string_match(base, a, w) for w in wanted) != negated for a in actual)
    if qualifier == "ForAnyValue":
        if actual is None:
            return False
        return any(any(_string_match(base, a, w) for w in wanted) != negated for a in actual)
    if actual is None:
        return negated
    matched = any(_string_match(base, a, str(w)) for a in actual for w in wanted)
    return not matched if negated else matched


def _statement_applies(statement: dict[str, Any], request: Request) -> bool:
    action = request.action.lower()
    if "Action" in statement:
        if not any(fnmatchcase(action, a.lower()) for a in _listed(statement["Action"])):
            return False
    elif any(fnmatchcase(action, a.lower()) for a in _listed(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(fnmatchcase(request.resource, r) for r in _listed(statement["Resource"])):
            return False
    elif any(fnmatchcase(request.resource, r) for r in _listed(statement["NotResource"])):
        return False
    context = request.context()
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not _condition_holds(operator, key, [str(w) for w in _listed(wanted)],
                                    context):
                return False
    return True


def decide(statements: list[dict[str, Any]], request: Request) -> str:
    """"deny" (explicit), "allow", or "implicit-deny"."""
    applying = [s for s in statements if _statement_applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return "deny"
    if any(s["Effect"] == "Allow" for s in applying):
        return "allow"
    return "implicit-deny"


def allowed(statements: list[dict[str, Any]], request: Request) -> bool:
    return decide(statements, request) == "allow"
