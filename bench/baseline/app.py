"""The naive fan-out of aws-samples/simple-websockets-chat-app (sendmessage), ported for comparison.

Like the original: Scan every connection, build the management client per invocation, post the message
to every connection concurrently (Promise.all there, a pool of botocore's default 10 here), no channels,
no coalescing, no persistence. Used only by the bench, through a derived template.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

_ddb = boto3.client("dynamodb")
_pool = ThreadPoolExecutor(max_workers=10)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table = os.environ["STATE_TABLE"]
    # The original's table holds only connections; ours holds more kinds, so filter (reads are the same).
    connection_ids: list[str] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#k = :c",
        "ExpressionAttributeNames": {"#k": "kind"},
        "ExpressionAttributeValues": {":c": {"S": "connection"}},
        "ProjectionExpression": "PK",
    }
    while True:
        page = _ddb.scan(**kwargs)
        connection_ids += [item["PK"]["S"].removeprefix("CONN#") for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    body = json.loads(event.get("body") or "{}")
    ctx = event["requestContext"]
    data = json.dumps(
        {
            "type": "message",
            "channel": body.get("channel"),
            "ts": time.time(),
            "user": {"id": ctx.get("authorizer", {}).get("userId")},
            "text": body.get("text"),
            "clientMsgId": body.get("clientMsgId"),
        }
    ).encode()
    api = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["CONNECTIONS_ENDPOINT"])

    def post(connection_id: str) -> None:
        try:
            api.post_to_connection(ConnectionId=connection_id, Data=data)
        except api.exceptions.GoneException:
            _ddb.delete_item(TableName=table, Key={"PK": {"S": f"CONN#{connection_id}"}, "SK": {"S": "META"}})

    list(_pool.map(post, connection_ids))
    return {"statusCode": 200}
