// The reference: the original AWS design's Lambda@Edge origin-request function, written
// the way that design describes it (Node.js 20, AWS SDK v3, a module-level Map cache with
// a 5-minute TTL, one DynamoDB get per miss, the workspace in `workspace-id`). It is the
// baseline bench/ compares edge_lambda/handler.py with; it is never deployed.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";

const TABLE_NAME = "domain-workspace-mappings";
const CACHE_TTL_MS = 5 * 60 * 1000;

// Built once per container. Lambda@Edge has no environment variables, so the region is a
// constant; AWS_ENDPOINT_URL (set only by the benchmark) points the SDK at moto.
export const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region: "us-east-1" }));

// host -> { workspaceId, expires }. Unknown hosts are cached too (workspaceId undefined),
// for the same 5 minutes: the design's "negative cache".
const cache = new Map();

export const handler = async (event) => {
  const request = event.Records[0].cf.request;
  const host = request.headers.host[0].value;

  let entry = cache.get(host);
  if (!entry || entry.expires <= Date.now()) {
    const { Item } = await ddb.send(
      new GetCommand({ TableName: TABLE_NAME, Key: { domain: host } }),
    );
    entry = { workspaceId: Item?.workspaceId, expires: Date.now() + CACHE_TTL_MS };
    cache.set(host, entry);
  }

  if (!entry.workspaceId) {
    return { status: "404", statusDescription: "Not Found", body: "Domain not configured" };
  }
  request.headers["workspace-id"] = [{ key: "workspace-id", value: entry.workspaceId }];
  return request;
};
