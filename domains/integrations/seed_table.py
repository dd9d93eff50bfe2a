"""The seed's `domain-workspace-mappings` items, read and stamped for adoption.

The seed's functions wrote items without a `version` (`{domain, workspaceId, status:
pending_validation|active, certificateArn?, createdAt, verifiedAt?}`). Our writes are
conditional on `version` (`edge_store.put_item`), and a missing version never compares
lower, so an unstamped seed item could never be replaced by our projection. Adoption
therefore stamps each adopted item with a version in one conditional UpdateItem that changes
nothing the edge reads: the item keeps routing while it joins the versioned scheme.
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from domains.integrations import aws, edge_store


@dataclass(frozen=True)
class SeedItem:
    domain: str
    workspace_id: str
    status: str
    certificate_arn: str = ""
    created_at: str = ""
    verified_at: str = ""
    version: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dynamo(cls, raw: dict[str, dict[str, str]]) -> SeedItem:
        def text(key: str) -> str:
            return str(raw.get(key, {}).get("S", ""))

        version = raw.get("version", {}).get("N")
        return cls(
            domain=text("domain"), workspace_id=text("workspaceId"), status=text("status"),
            certificate_arn=text("certificateArn"), created_at=text("createdAt"),
            verified_at=text("verifiedAt"),
            version=int(version) if version is not None else None,
            raw={k: next(iter(v.values())) for k, v in raw.items() if isinstance(v, dict)},
        )


def scan_items(*, page_size: int = 500) -> Iterator[SeedItem]:
    """Every item with all its attributes, a page at a time (memory stays bounded)."""
    start: dict[str, Any] | None = None
    while True:
        params: dict[str, Any] = {"TableName": edge_store.table_name(), "Limit": page_size,
                                  "ConsistentRead": True}
        if start:
            params["ExclusiveStartKey"] = start
        try:
            page = aws.client("dynamodb").scan(**params)
        except (ClientError, BotoCoreError) as exc:
            raise aws.classify(exc, "dynamodb.Scan") from exc
        for raw in page.get("Items", []):
            yield SeedItem.from_dynamo(raw)
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def get_item(domain: str) -> SeedItem | None:
    try:
        resp = aws.client("dynamodb").get_item(TableName=edge_store.table_name(),
                                               Key={"domain": {"S": domain}},
                                               ConsistentRead=True)
    except (ClientError, BotoCoreError) as exc:
        raise aws.classify(exc, "dynamodb.GetItem") from exc
    return SeedItem.from_dynamo(resp["Item"]) if resp.get("Item") else None


def stamp_version(item: SeedItem, version: int) -> bool:
    """Add `version` to an unversioned seed item still as we read it; False if it changed."""
    try:
        aws.client("dynamodb").update_item(
            TableName=edge_store.table_name(),
            Key={"domain": {"S": item.domain}},
            UpdateExpression="SET #v = :v",
            ConditionExpression=("attribute_not_exists(#v) AND workspaceId = :ws "
                                 "AND #s = :s"),
            ExpressionAttributeNames={"#v": "version", "#s": "status"},
            ExpressionAttributeValues={":v": {"N": str(version)},
                                       ":ws": {"S": item.workspace_id},
                                       ":s": {"S": item.status}},
        )
    except ClientError as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise aws.classify(exc, "dynamodb.UpdateItem") from exc
    except BotoCoreError as exc:
        raise aws.classify(exc, "dynamodb.UpdateItem") from exc
    return True
