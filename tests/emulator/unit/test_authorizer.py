"""REQUEST authorizer rules: identity sources, Unauthorized, Deny, malformed results, context."""

from ws_emulator.gateway import authorizer as authz

ARN = "arn:aws:execute-api:us-east-1:123456789012:api/prod/$connect"


def policy(effect, resource=ARN, action="execute-api:Invoke"):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": action, "Effect": effect, "Resource": resource}],
    }


def test_missing_query_or_header_identity_is_reported():
    sources = ["route.request.querystring.token", "route.request.header.Auth"]
    assert authz.missing_identity_sources(sources, [("auth", "x")], [("token", "t")]) == []
    assert authz.missing_identity_sources(sources, [], [("token", "")]) == sources


def test_allow_keeps_principal_and_stringified_context():
    payload = {
        "principalId": "alice",
        "policyDocument": policy("Allow"),
        "context": {"n": 1, "b": True, "s": "x"},
    }
    decision = authz.decide(True, payload, None, ARN)
    assert decision.allowed
    assert decision.request_context_authorizer(7) == {
        "principalId": "alice",
        "integrationLatency": 7,
        "n": "1",
        "b": "true",
        "s": "x",
    }


def test_unauthorized_error_is_401_and_other_errors_are_500():
    assert authz.decide(False, None, {"errorMessage": "Unauthorized"}, ARN).status == 401
    assert authz.decide(False, None, {"errorMessage": "boom"}, ARN).status == 500


def test_deny_or_no_matching_statement_is_403():
    assert authz.decide(True, {"principalId": "a", "policyDocument": policy("Deny")}, None, ARN).status == 403
    other = policy("Allow", resource="arn:aws:execute-api:us-east-1:1:other/*")
    assert authz.decide(True, {"principalId": "a", "policyDocument": other}, None, ARN).status == 403


def test_wildcards_and_deny_precedence():
    statement: dict = {
        "Statement": [{"Action": "execute-api:*", "Effect": "Allow", "Resource": "arn:aws:execute-api:*"}]
    }
    assert authz.policy_effect(statement, ARN) == "Allow"
    statement["Statement"].append({"Action": "*", "Effect": "Deny", "Resource": ["*"]})
    assert authz.policy_effect(statement, ARN) == "Deny"


def test_malformed_results_are_500():
    assert authz.decide(True, None, None, ARN).status == 500
    assert authz.decide(True, {"policyDocument": policy("Allow")}, None, ARN).status == 500
    nested = {"principalId": "a", "policyDocument": policy("Allow"), "context": {"x": {"y": 1}}}
    assert authz.decide(True, nested, None, ARN).status == 500
    big = {"principalId": "a", "policyDocument": policy("Allow"), "context": {"x": "y" * 9000}}
    assert authz.decide(True, big, None, ARN).status == 500
