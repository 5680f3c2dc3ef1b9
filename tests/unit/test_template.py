"""template.yaml against docs/design.md and our security rules: least privilege, safe logs, finite retries."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from parley.store import keys
from parley.triggers import SWEEP_MARGIN_MS
from tests.support.iam import (
    all_statements,
    resource_owner,
    statements_by_owner,
)
from tests.support.iam import as_list as _as_list
from tests.support.iam import if_branches as _if_branches
from tests.support.template import read_template

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"

TABLES = ("StateTable", "MessagesTable", "IdempotencyTable")
QUEUES = (
    "PresenceTimerQueue",
    "PresenceTimerDeadLetterQueue",
    "FanoutDeadLetterQueue",
    "WideFanoutQueue",
    "WideFanoutDeadLetterQueue",
)
ROUTE_FUNCTIONS = {
    "$connect": "ConnectFunction",
    "$disconnect": "DisconnectFunction",
    "$default": "DefaultFunction",
    "join": "JoinFunction",
    "leave": "LeaveFunction",
    "message": "MessageFunction",
    "typing": "TypingFunction",
    "history": "HistoryFunction",
    "presence": "PresenceFunction",
    "heartbeat": "HeartbeatFunction",
    "create_channel": "CreateChannelFunction",
    "invite": "InviteFunction",
    "channels": "ChannelsFunction",
    "react": "ReactFunction",
    "edit": "EditFunction",
    "delete": "DeleteFunction",
    "thread": "ThreadFunction",
    "open_dm": "OpenDmFunction",
    "mark_read": "MarkReadFunction",
}
ONE_WAY_ROUTES = {"$connect", "$disconnect"}

# Only these may appear in the stage's access log: never a query string (the JWT travels there) or a header.
SAFE_LOG_VARIABLES = {
    "$context.requestId",
    "$context.extendedRequestId",
    "$context.identity.sourceIp",
    "$context.connectionId",
    "$context.routeKey",
    "$context.eventType",
    "$context.status",
    "$context.requestTime",
    "$context.integrationLatency",
    "$context.integrationStatus",
    "$context.authorizer.error",
    "$context.error.message",
}


# ---------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return read_template()


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_}


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of(template, "AWS::Serverless::Function")


def design_functions() -> dict[str, str]:
    """logical id -> folder, from the functions table of docs/design.md."""
    rows = re.findall(r"^\| (\w+Function) \| (functions/\w+) \|", DESIGN.read_text(), re.MULTILINE)
    return dict(rows)


def design_filter_patterns() -> dict[str, list[dict[str, Any]]]:
    """Mapping (event name) -> the filter patterns listed under 'Fan-out filters' in docs/design.md."""
    section = DESIGN.read_text().split("## Fan-out filters", 1)[1].split("\n## ", 1)[0]
    patterns: dict[str, list[dict[str, Any]]] = {}
    table = ""
    for line in section.splitlines():
        heading = re.match(r"^- \w+Table \((\w+)[,)]", line)
        if heading:
            table = heading.group(1)
        for raw in re.findall(r"`(\{.*?\})`", line):
            patterns.setdefault(table, []).append(json.loads(raw))
    return patterns


# ---------------------------------------------------------------- IAM helpers


# ---------------------------------------------------------------- IAM


def test_the_iam_walk_sees_every_policy_carrying_resource(template):
    # GIVEN the template WHEN its statements are collected THEN each function's policies or role are seen
    owners = statements_by_owner(template)
    for name, fn in functions_of(template).items():
        role = fn["Properties"].get("Role")
        assert (role["Fn::GetAtt"][0] if role else name) in owners, name


def test_no_statement_has_a_wildcard_action(template):
    for st in all_statements(template):
        for action in _as_list(st["Action"]):
            assert "*" not in action, st


def test_no_statement_grants_on_every_resource(template):
    for st in all_statements(template):
        assert "*" not in _as_list(st["Resource"]), st


def test_no_data_statement_uses_a_wildcard_or_unknown_resource(template):
    # Tables, their indexes and streams, and queues must be named by this stack's own ARNs.
    data_resources = set(TABLES) | set(QUEUES)
    data_resources |= {f"{t}/stream" for t in TABLES} | {f"{t}/stream/*" for t in TABLES}
    data_resources |= {f"{t}/index/Due" for t in TABLES} | {"MessagesTable/index/Threads"}
    for st in all_statements(template):
        actions = _as_list(st["Action"])
        if not any(a.startswith(("dynamodb:", "sqs:")) for a in actions):
            continue
        for resource in _as_list(st["Resource"]):
            owner = resource_owner(resource)
            assert owner in data_resources, (owner, st)
            # A stream wildcard is only acceptable for ListStreams, the way SAM's own template scopes it.
            if owner.endswith("/*"):
                assert actions == ["dynamodb:ListStreams"], st


def test_no_statement_grants_scan(template):
    for st in all_statements(template):
        assert not any(a.lower() in ("dynamodb:scan", "dynamodb:*") for a in _as_list(st["Action"])), st


def test_no_function_uses_sam_policy_templates_or_managed_policies(template):
    # DynamoDBCrudPolicy and friends grant Scan and more; only explicit statements are reviewable here.
    for name, fn in functions_of(template).items():
        for policy in _as_list(fn["Properties"].get("Policies", [])):
            for doc in _if_branches(policy):
                assert isinstance(doc, dict) and set(doc) == {"Statement"}, (name, doc)


def test_functions_fed_by_streams_or_queues_have_an_explicit_role(template):
    # SAM would attach AWSLambdaDynamoDBExecutionRole / AWSLambdaSQSQueueExecutionRole (Resource "*").
    for name, fn in functions_of(template).items():
        kinds = {ev["Type"] for ev in fn["Properties"].get("Events", {}).values()}
        if kinds & {"DynamoDB", "SQS", "Kinesis"}:
            role = fn["Properties"].get("Role")
            assert role is not None, name
            role_res = template["Resources"][role["Fn::GetAtt"][0]]
            assert role_res["Type"] == "AWS::IAM::Role"
            principal = role_res["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
            assert principal == {"Service": "lambda.amazonaws.com"}


def test_explicit_roles_keep_logging_and_tracing(template):
    for name, role in resources_of(template, "AWS::IAM::Role").items():
        managed = {arn["Fn::Sub"].rsplit("/", 1)[1] for arn in role["Properties"]["ManagedPolicyArns"]}
        assert managed == {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}, name


def test_the_authorizer_reads_the_secret_only_in_hs256_mode(template):
    (policy,) = functions_of(template)["AuthorizerFunction"]["Properties"]["Policies"]
    condition, when_true, _ = policy["Fn::If"]
    assert condition == "UseJwks"
    assert when_true == {"Ref": "AWS::NoValue"}
    assert template["Conditions"]["UseJwks"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwksUrl"}, ""]}]}


# ---------------------------------------------------------------- functions and globals


def test_the_template_declares_exactly_the_functions_of_the_design(template):
    expected = design_functions()
    assert len(expected) == 26
    actual = {name: fn["Properties"]["CodeUri"].rstrip("/") for name, fn in functions_of(template).items()}
    assert actual == expected


@pytest.mark.parametrize("function,folder", sorted(design_functions().items()))
def test_every_code_uri_folder_exists(template, function, folder):
    code_uri = functions_of(template)[function]["Properties"]["CodeUri"]
    assert (ROOT / code_uri).is_dir(), code_uri
    assert (ROOT / code_uri / "app.py").is_file(), code_uri


def test_the_layer_is_built_from_the_parley_package(template):
    layer = template["Resources"]["ParleyLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "parley" / "__init__.py").is_file()
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "ParleyLayer"}]


def test_globals_set_the_environment_of_the_design(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    section = DESIGN.read_text().split("## Environment", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z_]+)`", cell)}
    assert len(documented) == 24
    assert documented == set(env)
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert env["CONNECTIONS_ENDPOINT"] == {
        "Fn::Sub": "https://${WebSocketApi}.execute-api.${AWS::Region}.amazonaws.com/${StageName}"
    }
    for variable, table in (("STATE_TABLE", "StateTable"), ("MESSAGES_TABLE", "MessagesTable")):
        assert env[variable] == {"Ref": table}
    assert env["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    assert env["PRESENCE_QUEUE_URL"] == {"Ref": "PresenceTimerQueue"}


def test_globals_run_every_function_on_python_313_with_tracing(template):
    fn = template["Globals"]["Function"]
    assert (fn["Runtime"], fn["Handler"], fn["Tracing"]) == ("python3.13", "app.handler", "Active")


# ---------------------------------------------------------------- API Gateway


def _routes(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        res["Properties"]["RouteKey"]: (name, res["Properties"])
        for name, res in resources_of(template, "AWS::ApiGatewayV2::Route").items()
    }


def _function_of_uri(uri: dict[str, Any]) -> str:
    match = re.search(r"/functions/\$\{(\w+)\.Arn\}/invocations$", uri["Fn::Sub"])
    assert match, uri
    return match.group(1)


def test_every_route_exists_once(template):
    keys = [
        res["Properties"]["RouteKey"] for res in resources_of(template, "AWS::ApiGatewayV2::Route").values()
    ]
    assert sorted(keys) == sorted(ROUTE_FUNCTIONS)


@pytest.mark.parametrize("route_key", sorted(ROUTE_FUNCTIONS))
def test_every_route_targets_an_integration_of_its_function(template, route_key):
    _, route = _routes(template)[route_key]
    target = re.fullmatch(r"integrations/\$\{(\w+)\}", route["Target"]["Fn::Sub"])
    assert target, route["Target"]
    integration = template["Resources"][target.group(1)]
    assert integration["Type"] == "AWS::ApiGatewayV2::Integration"
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    function = _function_of_uri(integration["Properties"]["IntegrationUri"])
    assert function == ROUTE_FUNCTIONS[route_key]
    assert template["Resources"][function]["Type"] == "AWS::Serverless::Function"


@pytest.mark.parametrize("route_key", sorted(set(ROUTE_FUNCTIONS) - ONE_WAY_ROUTES))
def test_two_way_routes_have_a_default_route_response(template, route_key):
    name, route = _routes(template)[route_key]
    assert route["RouteResponseSelectionExpression"] == "$default"
    responses = [
        res["Properties"]
        for res in resources_of(template, "AWS::ApiGatewayV2::RouteResponse").values()
        if res["Properties"]["RouteId"] == {"Ref": name}
    ]
    assert [r["RouteResponseKey"] for r in responses] == ["$default"]


def test_only_connect_is_authorized_by_the_jwt_authorizer(template):
    for key, (_, route) in _routes(template).items():
        if key == "$connect":
            assert route["AuthorizationType"] == "CUSTOM"
            authorizer = template["Resources"][route["AuthorizerId"]["Ref"]]["Properties"]
            assert authorizer["AuthorizerType"] == "REQUEST"
            assert authorizer["IdentitySource"] == ["route.request.querystring.token"]
            assert _function_of_uri(authorizer["AuthorizerUri"]) == "AuthorizerFunction"
        else:
            assert route.get("AuthorizationType", "NONE") == "NONE", key


def test_api_gateway_may_invoke_every_integrated_function(template):
    allowed = {
        res["Properties"]["FunctionName"]["Ref"]
        for res in resources_of(template, "AWS::Lambda::Permission").values()
        if res["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    assert allowed == set(ROUTE_FUNCTIONS.values()) | {"AuthorizerFunction"}


def test_the_stage_deploys_itself_so_no_deployment_can_go_stale(template):
    # A hand-made AWS::ApiGatewayV2::Deployment is a snapshot CloudFormation never refreshes: a new
    # route would be created but never served. AutoDeploy redeploys on every API change instead.
    assert resources_of(template, "AWS::ApiGatewayV2::Deployment") == {}
    (stage,) = resources_of(template, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["AutoDeploy"] is True
    assert "DeploymentId" not in stage["Properties"]


def _access_log_settings(template: dict[str, Any]) -> Any:
    (stage,) = resources_of(template, "AWS::ApiGatewayV2::Stage").values()
    return stage["Properties"]["AccessLogSettings"]


def _access_log_format(template: dict[str, Any]) -> str:
    (settings,) = _if_branches(_access_log_settings(template))
    return str(settings["Format"])


def test_access_logging_is_off_by_default_so_a_fresh_account_can_deploy(template):
    # A stage with AccessLogSettings fails to create ("CloudWatch Logs role ARN must be set in account
    # settings") until the account has API Gateway's CloudWatch Logs role: off unless asked for.
    assert template["Parameters"]["AccessLogging"]["Default"] == "Disabled"
    assert template["Conditions"]["HasAccessLogs"] == {"Fn::Equals": [{"Ref": "AccessLogging"}, "Enabled"]}
    settings = _access_log_settings(template)
    assert settings["Fn::If"][0] == "HasAccessLogs"
    assert settings["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert template["Resources"]["WebSocketAccessLogs"]["Condition"] == "HasAccessLogs"


def test_access_logs_never_contain_the_token(template):
    fmt = _access_log_format(template).lower()
    for forbidden in ("querystring", "token", "authorization", "header"):
        assert forbidden not in fmt


def test_access_log_format_is_json_of_safe_context_variables_only(template):
    fmt = _access_log_format(template)
    assert set(re.findall(r"\$context\.[\w.]+", fmt)) == SAFE_LOG_VARIABLES
    record = json.loads(fmt)
    assert set(record.values()) == SAFE_LOG_VARIABLES


SCALES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}


def _route_settings(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stage's settings by route key, `$default-settings` for DefaultRouteSettings."""
    (stage,) = resources_of(template, "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    return {"$default-settings": props["DefaultRouteSettings"], **props.get("RouteSettings", {})}


def _throttle(template: dict[str, Any], value: Any, scale: str) -> int:
    """A throttle setting, its FindInMap resolved for one ConnectionScale."""
    mapping, key, name = value["Fn::FindInMap"]
    assert key == {"Ref": "ConnectionScale"}
    return int(template["Mappings"][mapping][scale][name])


def test_stage_has_no_data_trace_on_any_route(template):
    for route, settings in _route_settings(template).items():
        assert settings["DataTraceEnabled"] is False, route


def test_route_settings_name_existing_routes(template):
    (stage_name,) = resources_of(template, "AWS::ApiGatewayV2::Stage")
    stage = template["Resources"][stage_name]
    for route in set(_route_settings(template)) - {"$default-settings"}:
        assert route in ROUTE_FUNCTIONS, route
    # a route must exist before the stage names it in RouteSettings
    assert set(stage["DependsOn"]) == {"HeartbeatRoute", "MessageRoute"}
    assert set(template["Parameters"]["ConnectionScale"]["AllowedValues"]) == set(SCALES)


@pytest.mark.parametrize("scale", SCALES)
def test_every_route_throttle_has_a_burst_at_least_its_rate(template, scale):
    for route, settings in _route_settings(template).items():
        rate = _throttle(template, settings["ThrottlingRateLimit"], scale)
        burst = _throttle(template, settings["ThrottlingBurstLimit"], scale)
        assert 0 < rate <= burst, (scale, route, rate, burst)


@pytest.mark.parametrize("scale", SCALES)
def test_heartbeat_and_message_throttles_fit_the_connection_count(template, scale):
    connections = SCALES[scale]
    settings = _route_settings(template)
    heartbeat = _throttle(template, settings["heartbeat"]["ThrottlingRateLimit"], scale)
    message = _throttle(template, settings["message"]["ThrottlingRateLimit"], scale)
    # every connection heartbeats every 4 to 5 minutes; 50 messages a user a day, peak hour at 5x;
    # both with headroom, or API Gateway would refuse healthy traffic
    assert heartbeat >= 1.5 * connections / 240, heartbeat
    assert message >= 1.5 * connections * 50 / 86_400 * 5, message


# ---------------------------------------------------------------- fan-out and timers


MAPPINGS = ["MessagesStream", "StateStream", "PresenceStream"]


def _stream_events(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Event name -> the properties of FanoutFunction's DynamoDB event source mapping."""
    events = functions_of(template)["FanoutFunction"]["Properties"]["Events"]
    return {name: ev["Properties"] for name, ev in events.items() if ev["Type"] == "DynamoDB"}


def test_fanout_reads_both_streams_from_the_latest_record(template):
    events = _stream_events(template)
    assert set(events) == set(MAPPINGS)
    tables = {name: props["Stream"]["Fn::GetAtt"][0] for name, props in events.items()}
    assert tables == {
        "MessagesStream": "MessagesTable",
        "StateStream": "StateTable",
        "PresenceStream": "StateTable",
    }
    for props in events.values():
        assert props["StartingPosition"] == "LATEST"


def test_presence_waits_for_its_own_window_and_typing_does_not(template):
    # One presence diff per channel per presence batch: a join storm spans few batches only if the
    # presence mapping waits. Typing stays on the real-time window.
    events = _stream_events(template)
    presence = events["PresenceStream"]
    assert presence["MaximumBatchingWindowInSeconds"] == {"Ref": "PresenceBatchingWindowSeconds"}
    assert presence["BatchSize"] == {"Ref": "PresenceBatchSize"}
    window = template["Parameters"]["PresenceBatchingWindowSeconds"]
    assert window["Default"] >= 5
    assert (window["MinValue"], window["MaxValue"]) == (0, 300)
    size = template["Parameters"]["PresenceBatchSize"]
    assert size["Default"] >= 1000
    assert size["MaxValue"] <= 10000  # the DynamoDB stream mapping's limit
    kinds = {
        name: {json.dumps(json.loads(f["Pattern"])["dynamodb"]) for f in props["FilterCriteria"]["Filters"]}
        for name, props in events.items()
    }
    assert all("presence" in k for k in kinds["PresenceStream"])
    assert not any("presence" in k for k in kinds["StateStream"] | kinds["MessagesStream"])


@pytest.mark.parametrize("table", MAPPINGS)
def test_fanout_retries_are_finite_and_failures_are_kept(template, table):
    props = _stream_events(template)[table]
    # -1 (the default) retries until the record expires, blocking the shard for up to 24 hours.
    assert 0 <= props["MaximumRetryAttempts"] <= 10
    assert 60 <= props["MaximumRecordAgeInSeconds"] <= 86400
    assert props["BisectBatchOnFunctionError"] is True
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    on_failure = props["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    assert on_failure["Destination"] == {"Fn::GetAtt": ["FanoutDeadLetterQueue", "Arn"]}
    if table != "PresenceStream":  # presence has its own (test_presence_waits_for_its_own_window_...)
        assert props["BatchSize"] == {"Ref": "FanoutBatchSize"}
        assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "FanoutBatchingWindowSeconds"}


def test_fanout_is_real_time_by_default_and_the_window_stays_a_parameter(template):
    # A window holds every event until it closes (1 s made each message 1.2 s late); at 0, batches
    # still form under load while an invocation runs.
    window = template["Parameters"]["FanoutBatchingWindowSeconds"]
    assert window["Default"] == 0
    assert (window["MinValue"], window["MaxValue"]) == (0, 300)


@pytest.mark.parametrize("table", MAPPINGS)
def test_fanout_filters_are_valid_json_and_the_designs(template, table):
    filters = _stream_events(template)[table]["FilterCriteria"]["Filters"]
    assert 1 <= len(filters) <= 5
    patterns = [json.loads(f["Pattern"]) for f in filters]
    assert all(isinstance(p, dict) for p in patterns)
    assert patterns == design_filter_patterns()[table]


def test_the_wide_fanout_queue_is_fifo_outlasts_its_worker_and_dead_letters_to_fifo(template):
    queue = template["Resources"]["WideFanoutQueue"]["Properties"]
    dlq = template["Resources"]["WideFanoutDeadLetterQueue"]["Properties"]
    worker = functions_of(template)["FanoutChunkFunction"]["Properties"]
    assert queue["FifoQueue"] is True and dlq["FifoQueue"] is True  # order per message group
    assert queue["ContentBasedDeduplication"] is False  # FanoutFunction sets the deduplication id
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["WideFanoutDeadLetterQueue", "Arn"]
    }
    # a chunk is no use once the stream itself would have given up on its record
    fanout = functions_of(template)["FanoutFunction"]["Properties"]
    ages = {e["Properties"]["MaximumRecordAgeInSeconds"] for e in fanout["Events"].values()}
    assert queue["MessageRetentionPeriod"] <= max(ages)
    (event,) = worker["Events"].values()
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["WideFanoutQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["BatchSize"] == 1


def test_the_fanout_is_wired_to_the_two_level_fanout_parameters(template):
    env = functions_of(template)["FanoutFunction"]["Properties"]["Environment"]["Variables"]
    assert env == {
        "WIDE_FANOUT_THRESHOLD": {"Ref": "WideFanoutThreshold"},
        "WIDE_FANOUT_CHUNK_SIZE": {"Ref": "WideFanoutChunkSize"},
        "WIDE_FANOUT_GROUPS": {"Ref": "WideFanoutGroups"},
        "WIDE_FANOUT_QUEUE_URL": {"Ref": "WideFanoutQueue"},
    }
    assert template["Parameters"]["WideFanoutThreshold"]["MinValue"] == 0  # 0 turns it off


def test_presence_timer_queue_outlasts_its_consumer(template):
    queue = template["Resources"]["PresenceTimerQueue"]["Properties"]
    timer = functions_of(template)["PresenceTimerFunction"]["Properties"]
    timeout = timer.get("Timeout", template["Globals"]["Function"]["Timeout"])
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["DelaySeconds"] == 0
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["PresenceTimerDeadLetterQueue", "Arn"]
    }
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    (event,) = timer["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["PresenceTimerQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_queues_are_encrypted(template):
    for name in QUEUES:
        assert template["Resources"][name]["Properties"]["SqsManagedSseEnabled"] is True, name


def test_sweeper_runs_every_minute(template):
    (event,) = functions_of(template)["SweeperFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == "rate(1 minute)"


def test_sweeper_timeout_leaves_room_for_work_and_ends_before_the_next_run(template):
    timeout_s = functions_of(template)["SweeperFunction"]["Properties"]["Timeout"]
    # under the one-minute schedule, so runs do not overlap; and well above the margin it stops at
    assert timeout_s < 60
    assert timeout_s * 1000 >= 4 * SWEEP_MARGIN_MS


# ---------------------------------------------------------------- tables


def _table(template: dict[str, Any], name: str) -> dict[str, Any]:
    return template["Resources"][name]["Properties"]


def test_tables_are_on_demand_encrypted_and_named_by_cloudformation(template):
    for name in TABLES:
        props = _table(template, name)
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["SSESpecification"] == {"SSEEnabled": True}, name
        assert "TableName" not in props, name


@pytest.mark.parametrize("name", ["StateTable", "MessagesTable"])
def test_fanout_tables_stream_new_and_old_images(template, name):
    assert _table(template, name)["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


@pytest.mark.parametrize(
    ("name", "attribute"), [("StateTable", "expiresAt"), ("IdempotencyTable", "expiration")]
)
def test_ttl_where_the_design_says(template, name, attribute):
    assert _table(template, name)["TimeToLiveSpecification"] == {"AttributeName": attribute, "Enabled": True}


def test_messages_are_durable(template):
    table = template["Resources"]["MessagesTable"]
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # kept on delete and replacement, but a rolled-back first create leaves no orphan table behind
    assert table["DeletionPolicy"] == "RetainExceptOnCreate"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert "TimeToLiveSpecification" not in table["Properties"]


def test_state_table_has_the_sparse_due_index(template):
    props = _table(template, "StateTable")
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "Due"
    assert index["KeySchema"] == [
        {"AttributeName": "dueShard", "KeyType": "HASH"},
        {"AttributeName": "dueAt", "KeyType": "RANGE"},
    ]
    # only what the sweeper reads (store/due.py asks for exactly these), not every attribute
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": list(keys.DUE_PROJECTED),
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {"PK": "S", "SK": "S", "dueShard": "S", "dueAt": "N"}


# ---------------------------------------------------------------- alarms and outputs


def _watched_metrics(props: dict[str, Any]) -> list[tuple[str, str]]:
    if "MetricName" in props:
        return [(props["MetricName"], json.dumps(props["Dimensions"][0]["Value"]))]
    return [
        (
            m["MetricStat"]["Metric"]["MetricName"],
            json.dumps(m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]),
        )
        for m in props["Metrics"]
        if "MetricStat" in m
    ]


def test_alarms_watch_every_function_table_and_dead_letter_queue(template):
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    watched = {metric for a in alarms.values() for metric in _watched_metrics(a["Properties"])}
    functions = set(functions_of(template))
    with_own_alarm = {"FanoutFunction", "AuthorizerFunction"}
    assert watched == {
        ("Errors", '{"Ref": "FanoutFunction"}'),
        ("IteratorAge", '{"Ref": "FanoutFunction"}'),
        ("Errors", '{"Ref": "AuthorizerFunction"}'),
        ("TokensRefused", '"parley"'),
        ("JwksUnavailable", '"parley"'),
        ("ApproximateNumberOfMessagesVisible", '{"Fn::GetAtt": ["FanoutDeadLetterQueue", "QueueName"]}'),
        (
            "ApproximateNumberOfMessagesVisible",
            '{"Fn::GetAtt": ["PresenceTimerDeadLetterQueue", "QueueName"]}',
        ),
        (
            "ApproximateNumberOfMessagesVisible",
            '{"Fn::GetAtt": ["WideFanoutDeadLetterQueue", "QueueName"]}',
        ),
    } | {("Errors", json.dumps({"Ref": fn})) for fn in functions - with_own_alarm} | {
        ("Throttles", json.dumps({"Ref": fn})) for fn in functions
    } | {
        (metric, json.dumps({"Ref": table}))
        for table in TABLES
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents")
    }


def test_a_metric_math_alarm_reads_at_most_ten_metrics(template):
    # CloudWatch's hard limit for alarms on metric math; neither moto nor cfn-lint enforce it
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        metrics = [m for m in alarm["Properties"].get("Metrics", []) if "MetricStat" in m]
        assert len(metrics) <= 10, name


def test_alarms_notify_only_when_a_topic_is_given(template):
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    composites = resources_of(template, "AWS::CloudWatch::CompositeAlarm")
    parts = {
        part
        for composite in composites.values()
        for part in re.findall(r'ALARM\("\$\{(\w+)\}"\)', composite["Properties"]["AlarmRule"]["Fn::Sub"])
    }
    assert parts
    for composite in composites.values():
        assert composite["Properties"]["AlarmActions"] == notify
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        if name in parts:  # a part notifies through its composite, never twice
            assert "AlarmActions" not in alarm["Properties"], name
        else:
            assert alarm["Properties"]["AlarmActions"] == notify, name


def test_outputs_give_the_urls_and_names_clients_and_operators_need(template):
    outputs = template["Outputs"]
    assert outputs["WebSocketUrl"]["Value"] == {
        "Fn::Sub": "wss://${WebSocketApi}.execute-api.${AWS::Region}.amazonaws.com/${StageName}"
    }
    assert outputs["ConnectionsUrl"]["Value"]["Fn::Sub"].endswith("/${StageName}/@connections")
    for name, ref in (
        ("StateTableName", "StateTable"),
        ("MessagesTableName", "MessagesTable"),
        ("IdempotencyTableName", "IdempotencyTable"),
        ("FanoutDeadLetterQueueUrl", "FanoutDeadLetterQueue"),
    ):
        assert outputs[name]["Value"] == {"Ref": ref}


def test_authorizer_alarm_does_not_count_refused_tokens_as_failures(template):
    # a refused token raises "Unauthorized" (API Gateway's 401), which Lambda counts as an Error
    alarm = template["Resources"]["AuthorizerErrorsAlarm"]["Properties"]
    returned = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert len(returned) == 1
    assert returned[0]["Expression"].replace(" ", "") == "FILL(errors,0)-FILL(refused,0)"


def test_a_jwks_outage_has_its_own_alarm_and_is_not_subtracted_as_a_refused_token(template):
    # the authorizer counts JwksUnavailable (and re-raises: a 500), never TokensRefused, for a JWKS outage
    alarm = template["Resources"]["JwksUnavailableAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Parley", "JwksUnavailable")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "parley"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    subtracted = template["Resources"]["AuthorizerErrorsAlarm"]["Properties"]["Metrics"]
    assert [m["MetricStat"]["Metric"]["MetricName"] for m in subtracted if "MetricStat" in m] == [
        "Errors",
        "TokensRefused",
    ]


# ---------------------------------------------------------------- logs and traces: what they keep, how long


def test_every_function_logs_to_its_own_group_with_a_retention(template):
    # Lambda's implicit /aws/lambda/... groups keep logs forever and outlive the stack.
    for name, fn in functions_of(template).items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]
        assert group == {"Ref": f"{name}Logs"}
        resource = template["Resources"][f"{name}Logs"]
        assert resource["Type"] == "AWS::Logs::LogGroup"
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert resource["DeletionPolicy"] == "Delete"


def test_lambda_system_logs_are_warn_and_app_logs_follow_the_log_level(template):
    logging = template["Globals"]["Function"]["LoggingConfig"]
    assert logging["SystemLogLevel"] == "WARN"
    assert logging["LogFormat"] == "JSON"
    assert logging["ApplicationLogLevel"] == {
        "Fn::FindInMap": ["LambdaLogLevels", {"Ref": "LogLevel"}, "Level"]
    }
    lambda_levels = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
    mapping = template["Mappings"]["LambdaLogLevels"]
    assert set(mapping) == set(template["Parameters"]["LogLevel"]["AllowedValues"])
    assert {entry["Level"] for entry in mapping.values()} <= lambda_levels


def test_traces_do_not_store_responses(template):
    # responses carry message text (history, joined)
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


def test_the_fanout_dead_letters_are_kept_no_longer_than_the_stream_keeps_records(template):
    # a dead letter names shard and sequence numbers; after the stream's 24 h they replay nothing
    props = template["Resources"]["FanoutDeadLetterQueue"]["Properties"]
    assert props["MessageRetentionPeriod"] <= 24 * 3600


def test_the_fanout_has_the_cpu_to_serve_a_large_channel_in_its_timeout(template):
    # Measured: one post costs about 1.5 ms of client CPU at one vCPU (1,769 MB); Lambda's CPU scales
    # with memory. A 10,000-member channel must fit FanoutFunction's Timeout with room for retries.
    post_cpu_ms, members, one_vcpu_mb = 1.5, 10_000, 1769
    fanout = template["Resources"]["FanoutFunction"]["Properties"]
    assert fanout["MemorySize"] == {"Ref": "FanoutMemorySize"}
    memory = template["Parameters"]["FanoutMemorySize"]["Default"]
    vcpu = min(memory, one_vcpu_mb) / one_vcpu_mb  # above one vCPU the GIL keeps posting on one core
    seconds = members * post_cpu_ms / 1000 / vcpu
    assert seconds <= fanout["Timeout"] / 2


def test_a_jwks_deploy_must_name_the_issuer_and_the_audience(template):
    # CloudFormation refuses the parameters before creating anything (a Rules assertion).
    rule = template["Rules"]["JwksNeedsIssuerAndAudience"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwksUrl"}, ""]}]}
    asserted = [a["Assert"] for a in rule["Assertions"]]
    assert asserted == [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]} for name in ("JwtIssuer", "JwtAudience")
    ]
