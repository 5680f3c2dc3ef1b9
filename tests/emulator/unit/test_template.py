"""Loading SAM templates into the emulator's specs (fixture app + small inline templates)."""

from pathlib import Path

import pytest

from ws_emulator.errors import TemplateError
from ws_emulator.template.functions import merge_globals
from ws_emulator.template.loader import load_template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "app" / "template.yaml"


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n", encoding="utf-8")
    path = tmp_path / "template.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_functions_get_globals_merged_and_env_resolved() -> None:
    t = load_template(FIXTURE)
    alpha = t.functions["AlphaFunction"]
    assert alpha.name == "local-AlphaFunction"
    assert alpha.runtime == "python3.11"
    assert alpha.timeout_s == 5.0
    assert alpha.memory_mb == 256
    assert alpha.handler == "app.handler"
    assert alpha.code_dir == FIXTURE.parent / "functions" / "alpha"
    assert alpha.environment["GREETING"] == "hello, alpha"  # function wins over Globals
    assert alpha.environment["ITEMS_TABLE"] == "local-ItemsTable"
    assert (
        alpha.environment["WORK_QUEUE_URL"]
        == "https://sqs.us-east-1.amazonaws.com/123456789012/local-WorkQueue"
    )
    assert alpha.environment["MODE"] == "development"
    assert [layer.logical_id for layer in alpha.layers] == ["SharedLayer"]
    assert t.functions["BetaFunction"].timeout_s == 2.0
    assert t.functions["BetaFunction"].reserved_concurrency == 2
    assert t.functions["ToolsFunction"].handler == "tools.main.handler"


def test_parameter_overrides_and_conditions() -> None:
    t = load_template(FIXTURE, {"Stage": "prod", "Greeting": "hi"}, stack_name="s1", region="eu-west-1")
    api = t.websocket_apis[0]
    env = t.functions["BetaFunction"].environment
    assert env["MODE"] == "production"
    assert env["GREETING"] == "hi"
    assert env["ENDPOINT"] == f"https://{api.api_id}.execute-api.eu-west-1.amazonaws.com/prod"
    assert "ProdOnlyTable" in t.tables
    assert t.tables["ProdOnlyTable"].name == "prod-only"
    assert t.tables["ItemsTable"].name == "s1-ItemsTable"
    assert "Alarm (AWS::CloudWatch::Alarm; Condition NotProd is false)" in t.ignored


def test_disallowed_parameter_value_is_reported() -> None:
    with pytest.raises(TemplateError, match="Stage"):
        load_template(FIXTURE, {"Stage": "qa"})


def test_parameter_without_default_needs_override(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Parameters:\n  Secret:\n    Type: String\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n",
    )
    with pytest.raises(TemplateError) as err:
        load_template(path)
    assert err.value.logical_id == "Secret"
    assert str(path) in str(err.value)
    assert load_template(path, {"Secret": "x"}).parameters["Secret"] == "x"


def test_table_create_args() -> None:
    table = load_template(FIXTURE).tables["ItemsTable"]
    assert table.stream is True
    assert table.ttl_attribute == "expiresAt"
    assert table.create_args["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert table.create_args["BillingMode"] == "PAY_PER_REQUEST"
    assert table.create_args["GlobalSecondaryIndexes"][0]["IndexName"] == "Due"
    assert "PointInTimeRecoverySpecification" not in table.create_args


def test_queue_redrive_policy_points_at_dlq_arn() -> None:
    queues = load_template(FIXTURE).queues
    assert queues["WorkDLQ"].name == "local-work-dlq"
    assert queues["WorkQueue"].dead_letter_queue_id == "WorkDLQ"
    assert (
        '"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:local-work-dlq"'
        in (queues["WorkQueue"].attributes["RedrivePolicy"])
    )
    assert queues["WorkQueue"].attributes["VisibilityTimeout"] == "2"


def test_event_sources() -> None:
    fn = load_template(FIXTURE).functions["BatchFunction"]
    (stream,) = fn.stream_sources
    assert stream.table_id == "ItemsTable"
    assert stream.filters[0] == {"dynamodb": {"NewImage": {"kind": {"S": ["message"]}}}}
    assert stream.report_batch_item_failures and stream.bisect_on_error
    assert (stream.max_retry_attempts, stream.max_record_age_s) == (1, 60)
    assert stream.on_failure_queue_id == "StreamFailures"
    (sqs,) = fn.sqs_sources
    assert (sqs.queue_id, sqs.batch_size, sqs.report_batch_item_failures) == ("WorkQueue", 5, True)
    tick, nightly = fn.schedules
    assert (tick.expression, tick.enabled, tick.input) == ("rate(1 minute)", True, '{"tick": true}')
    assert (nightly.expression, nightly.enabled) == ("cron(0 3 * * ? *)", False)


def test_websocket_api_routes_and_authorizer() -> None:
    t = load_template(FIXTURE)
    (api,) = t.websocket_apis
    assert api.name == "fixture-chat"
    assert api.stage == "dev"
    assert api.route_selection_expression == "$request.body.action"
    connect = api.routes["$connect"]
    assert (connect.function_id, connect.authorization_type, connect.authorizer_id) == (
        "AlphaFunction",
        "CUSTOM",
        "Authorizer",
    )
    assert api.routes["echo"].function_id == "BetaFunction"
    assert api.routes["echo"].has_route_response is True
    assert connect.has_route_response is False
    assert api.authorizers["Authorizer"].identity_sources == ["route.request.querystring.token"]


def test_unhandled_resources_and_events_are_listed() -> None:
    ignored = load_template(FIXTURE).ignored
    assert "Alarm (AWS::CloudWatch::Alarm)" in ignored
    assert "BatchFunction.Events.Http (Api event)" in ignored
    assert any(i.startswith("ProdOnlyTable") and "Condition" in i for i in ignored)


@pytest.mark.parametrize(
    ("resource", "logical_id"),
    [
        (
            "  F:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: nowhere, Handler: app.h, "
            "Runtime: python3.11}\n",
            "F",
        ),
        (
            "  F:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: app.h, "
            "Runtime: nodejs20.x}\n",
            "F",
        ),
        (
            "  F:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: fn, Handler: app.h, "
            "Runtime: python3.11, Environment: {Variables: {X: !GetAtt Nope.Arn}}}\n",
            "F",
        ),
        (
            "  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn\n"
            "      Handler: app.h\n"
            "      Runtime: python3.11\n      Events:\n        S:\n          Type: DynamoDB\n"
            "          Properties: {Stream: 'arn:aws:dynamodb:x', StartingPosition: LATEST}\n",
            "F.Events.S",
        ),
    ],
)
def test_errors_name_the_logical_id(tmp_path: Path, resource: str, logical_id: str) -> None:
    path = write(tmp_path, "Resources:\n" + resource)
    with pytest.raises(TemplateError) as err:
        load_template(path)
    assert err.value.logical_id == logical_id


BAD_FILTER = """\
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: app.h
      Runtime: python3.11
      Events:
        S:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt T.StreamArn
            StartingPosition: LATEST
            FilterCriteria: {Filters: [{Pattern: '{"eventName": "INSERT"}'}]}
"""


def test_invalid_filter_pattern_is_a_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as err:
        load_template(write(tmp_path, BAD_FILTER))
    assert err.value.logical_id == "F.Events.S"
    assert "pattern" in err.value.message


def test_merge_globals_semantics() -> None:
    merged = merge_globals(
        {"Timeout": 3, "Layers": ["a"], "Environment": {"Variables": {"A": "1", "B": "1"}}},
        {"Timeout": 9, "Layers": ["b"], "Environment": {"Variables": {"B": "2"}}},
    )
    assert merged == {"Timeout": 9, "Layers": ["a", "b"], "Environment": {"Variables": {"A": "1", "B": "2"}}}
    # an intrinsic is a value, not a map to merge into
    assert merge_globals({"X": {"Ref": "A"}}, {"X": {"Fn::Sub": "b"}}) == {"X": {"Fn::Sub": "b"}}


PLAIN_CFN_TRIGGERS = """\
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Q:
    Type: AWS::SQS::Queue
  F:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}
  StreamMapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref F
      EventSourceArn: !GetAtt T.StreamArn
      StartingPosition: TRIM_HORIZON
      BatchSize: 7
      FilterCriteria: {Filters: [{Pattern: '{"eventName": ["INSERT"]}'}]}
  QueueMapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !GetAtt F.Arn
      EventSourceArn: !GetAtt Q.Arn
      ScalingConfig: {MaximumConcurrency: 2}
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(5 minutes)
      Targets: [{Id: f, Arn: !GetAtt F.Arn, Input: '{"n": 1}'}]
"""


def test_sns_failure_destination_is_a_warning(tmp_path: Path) -> None:
    body = (
        PLAIN_CFN_TRIGGERS.replace(
            "      BatchSize: 7\n",
            "      BatchSize: 7\n      DestinationConfig: {OnFailure: {Destination: !Ref Topic}}\n",
        )
        + "  Topic:\n    Type: AWS::SNS::Topic\n"
    )
    t = load_template(write(tmp_path, body))
    assert t.functions["F"].stream_sources[0].on_failure_queue_id is None
    assert any("SNS on-failure" in w for w in t.warnings)


def test_plain_cloudformation_mappings_and_rules_become_function_triggers(tmp_path: Path) -> None:
    fn = load_template(write(tmp_path, PLAIN_CFN_TRIGGERS)).functions["F"]
    (stream,) = fn.stream_sources
    assert (stream.table_id, stream.batch_size, stream.starting_position) == ("T", 7, "TRIM_HORIZON")
    assert stream.filters == [{"eventName": ["INSERT"]}]
    assert [(s.queue_id, s.max_concurrency) for s in fn.sqs_sources] == [("Q", 2)]
    (rule,) = fn.schedules
    assert (rule.expression, rule.enabled, rule.input, rule.event_id) == (
        "rate(5 minutes)",
        True,
        '{"n": 1}',
        "Nightly",
    )
