"""IAM enforced: each function's AWS and @connections calls are checked against its role, as on AWS."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from ws_emulator.app import run_emulator
from ws_emulator.config import Config
from ws_emulator.errors import TemplateError

FIXTURE = Path(__file__).parents[1] / "fixtures" / "iam_app" / "template.yaml"
ACCOUNT = "123456789012"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu():
    config = Config(
        template=FIXTURE,
        port=0,
        ssm_parameters={"/probe/allowed": "yes", "/probe/secret": "no"},
    )
    async with run_emulator(config) as emulator:
        yield emulator


async def probe(emu, function_id, **event):
    result = await emu.runtime.invoke(function_id, event)
    assert result.ok, result.error
    return result.payload


def table_arn(emu):
    return f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{emu.template.tables['ItemsTable'].name}"


async def test_a_function_without_the_permission_gets_access_denied_with_awss_message(emu):
    # Given a function whose role has no DynamoDB statement
    # When it writes an item
    answer = await probe(emu, "NoPermissionFunction", op="put")
    # Then DynamoDB refuses it the way AWS words it, naming the assumed role and the function
    fn = emu.template.functions["NoPermissionFunction"]
    assert answer == {
        "error": "AccessDeniedException",
        "message": f"User: arn:aws:sts::{ACCOUNT}:assumed-role/local-NoPermissionFunctionRole/{fn.name} "
        f"is not authorized to perform: dynamodb:PutItem on resource: {table_arn(emu)} "
        "because no identity-based policy allows the dynamodb:PutItem action",
    }
    # and nothing was written
    table = emu.template.tables["ItemsTable"].name
    item = emu.aws.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "k"}})
    assert "Item" not in item


async def test_an_inline_statement_allows_exactly_its_action(emu):
    assert await probe(emu, "WriterFunction", op="put", key="w") == {"ok": True}
    denied = await probe(emu, "WriterFunction", op="get")
    assert denied["error"] == "AccessDeniedException"
    assert f"dynamodb:GetItem on resource: {table_arn(emu)} " in denied["message"]


async def test_a_sam_policy_template_grants_its_read_actions_on_the_table_and_its_indexes(emu):
    # DynamoDBReadPolicy, expanded by aws-sam-translator: reads on table/T and table/T/index/*
    assert await probe(emu, "ReaderFunction", op="get") == {"ok": True}
    assert await probe(emu, "ReaderFunction", op="query_index") == {"ok": True}
    # and no write: PutItem is not one of its actions
    denied = await probe(emu, "ReaderFunction", op="put")
    assert denied["error"] == "AccessDeniedException"
    assert "dynamodb:PutItem" in denied["message"]


async def test_a_transaction_needs_the_item_actions_it_performs(emu):
    # TransactWriteItems is authorized as the PutItem it contains
    assert await probe(emu, "WriterFunction", op="transact_put") == {"ok": True}
    denied = await probe(emu, "ReaderFunction", op="transact_put")
    assert denied["error"] == "AccessDeniedException"
    assert "dynamodb:PutItem" in denied["message"]


async def test_an_explicit_deny_wins_over_an_allow(emu):
    denied = await probe(emu, "PosterFunction", op="get")
    assert denied["error"] == "AccessDeniedException"
    assert denied["message"].endswith("with an explicit deny in an identity-based policy")


async def test_an_explicit_role_with_an_attached_policy_scopes_queues_and_parameters(emu):
    assert await probe(emu, "ExplicitRoleFunction", op="send", queue="ALLOWED_QUEUE") == {"ok": True}
    other = await probe(emu, "ExplicitRoleFunction", op="send", queue="OTHER_QUEUE")
    assert other["error"] == "AccessDenied"
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:local-OtherQueue"
    assert f"sqs:SendMessage on resource: {queue_arn} " in other["message"]
    assert await probe(emu, "ExplicitRoleFunction", op="parameter", name="/probe/allowed") == {"ok": True}
    secret = await probe(emu, "ExplicitRoleFunction", op="parameter", name="/probe/secret")
    assert secret["error"] == "AccessDeniedException"
    parameter_arn = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/probe/secret"
    assert f"ssm:GetParameter on resource: {parameter_arn} " in secret["message"]


async def test_connections_need_manage_connections_on_the_stage(emu):
    # Allowed: the call goes through and meets the unknown connection (410)
    assert (await probe(emu, "PosterFunction", op="post"))["error"] == "GoneException"
    # Not allowed: 403 before the connection is even looked up
    denied = await probe(emu, "NoPermissionFunction", op="post")
    api = emu.gateway.api.info
    assert denied["error"] == "ForbiddenException"
    assert denied["message"].startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/local-NoPermissionFunctionRole/"
    )
    assert (
        f"execute-api:ManageConnections on resource: arn:aws:execute-api:us-east-1:{ACCOUNT}:"
        f"{api.api_id}/{api.stage}/POST/@connections/bm9ib2R5IGhlcmU= " in denied["message"]
    )


async def test_no_iam_allows_every_call():
    config = Config(template=FIXTURE, port=0, iam=False)
    async with run_emulator(config) as emulator:
        assert await probe(emulator, "NoPermissionFunction", op="put") == {"ok": True}
        assert (await probe(emulator, "NoPermissionFunction", op="post"))["error"] == "GoneException"


async def test_start_up_refuses_a_role_that_cannot_read_its_event_sources():
    template = FIXTURE.parents[1] / "iam_mapping" / "template.yaml"
    with pytest.raises(TemplateError, match="Worker: event source mapping refused: Cannot access stream"):
        async with run_emulator(Config(template=template, port=0)):
            pass
    # --no-iam lets it through to the next check (this template serves no WebSocket API)
    with pytest.raises(TemplateError, match="no AWS::ApiGatewayV2::Api"):
        async with run_emulator(Config(template=template, port=0, iam=False)):
            pass
