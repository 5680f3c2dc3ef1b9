"""`make deploy-check` against moto's fresh account: it names what a first deploy lacks, and the fix."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from scripts import deploy_check
from scripts.deploy_check import DeployConfig, Finding, Level

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
SECRET = "/parley/jwt-secret"


def _has_all(_name: str) -> str:
    return "/usr/bin/tool"


def _levels(findings: list[Finding], needle: str) -> list[Level]:
    return [f.level for f in findings if needle in f.what]


def _config(**parameters: str) -> DeployConfig:
    return DeployConfig(REGION, "test", {"JwtSecretParameterName": SECRET, **parameters})


@pytest.fixture
def fresh_account():
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def test_the_repository_samconfig_and_template_give_the_deploy_region_and_defaults():
    # Given samconfig.toml and template.yaml as shipped, When read as sam deploy would
    config = deploy_check.deploy_config(ROOT / "samconfig.toml", ROOT / "template.yaml")
    # Then the region is samconfig's, and access logging is off so no account setting is needed
    assert config.region == "us-east-1"
    assert config.region_source.startswith("samconfig.toml")
    assert config.parameters["AccessLogging"] == "Disabled"
    assert config.parameters["JwtSecretParameterName"] == SECRET


def test_overrides_on_the_command_line_win_over_samconfig():
    config = deploy_check.deploy_config(
        ROOT / "samconfig.toml",
        ROOT / "template.yaml",
        region="ap-south-1",
        overrides=["AccessLogging=Enabled", 'JwksUrl=""'],
    )
    assert config.region == "ap-south-1"
    assert config.parameters["AccessLogging"] == "Enabled"
    assert config.parameters["JwksUrl"] == ""


@pytest.mark.parametrize("bad", ["NoEquals", "=value"])
def test_a_malformed_override_is_a_clear_error(bad):
    with pytest.raises(deploy_check.ConfigError, match="Key=Value"):
        deploy_check.parse_overrides([bad])


def test_an_unknown_config_env_is_a_clear_error():
    with pytest.raises(deploy_check.ConfigError, match=r"\[staging\]"):
        deploy_check.deploy_config(ROOT / "samconfig.toml", ROOT / "template.yaml", config_env="staging")


def test_a_fresh_account_lacks_the_secret_and_is_told_the_command_in_the_stack_region(fresh_account):
    findings = deploy_check.run_checks(fresh_account, _config(), environ={}, which=_has_all)
    (missing,) = [f for f in findings if f.level is Level.MISSING]
    assert SECRET in missing.what
    assert f"--region {REGION}" in missing.fix
    assert "--type SecureString" in missing.fix
    assert _levels(findings, "access logging off") == [Level.OK]


def test_with_the_secret_in_place_a_fresh_account_is_ready(fresh_account):
    fresh_account.client("ssm").put_parameter(Name=SECRET, Type="SecureString", Value="s" * 48)
    findings = deploy_check.run_checks(fresh_account, _config(), environ={}, which=_has_all)
    assert [f for f in findings if f.level is not Level.OK] == []
    assert "ready for `sam deploy`" in deploy_check.render(findings)


def test_a_plain_string_secret_is_refused(fresh_account):
    fresh_account.client("ssm").put_parameter(Name=SECRET, Type="String", Value="s" * 48)
    findings = deploy_check.run_checks(fresh_account, _config(), environ={}, which=_has_all)
    assert _levels(findings, "not a SecureString") == [Level.MISSING]


def test_access_logging_needs_the_account_cloudwatch_role_and_says_how_to_set_it(fresh_account):
    # Given a fresh account (no cloudwatchRoleArn) with the secret, When access logging is asked for
    fresh_account.client("ssm").put_parameter(Name=SECRET, Type="SecureString", Value="s" * 48)
    findings = deploy_check.run_checks(
        fresh_account, _config(AccessLogging="Enabled"), environ={}, which=_has_all
    )
    # Then exactly that is missing, with the three commands that set the role
    (missing,) = [f for f in findings if f.level is Level.MISSING]
    assert "CloudWatch Logs role" in missing.what
    assert "aws iam create-role" in missing.fix
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in missing.fix
    assert f"aws apigateway update-account --region {REGION}" in missing.fix
    assert "arn:aws:iam::123456789012:role/" in missing.fix

    # And once the account has the role, nothing is missing
    role = fresh_account.client("iam").create_role(
        RoleName=deploy_check.CLOUDWATCH_ROLE, AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    fresh_account.client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}]
    )
    findings = deploy_check.run_checks(
        fresh_account, _config(AccessLogging="Enabled"), environ={}, which=_has_all
    )
    assert _levels(findings, "CloudWatch Logs role") == [Level.OK]


def test_jwks_without_issuer_and_audience_is_missing(fresh_account):
    findings = deploy_check.run_checks(
        fresh_account, _config(JwksUrl="https://idp.example/jwks.json"), environ={}, which=_has_all
    )
    assert _levels(findings, "JwtIssuer and JwtAudience") == [Level.MISSING]


def test_a_shell_region_other_than_the_stack_region_is_warned_about(fresh_account):
    findings = deploy_check.run_checks(
        fresh_account, _config(), environ={"AWS_REGION": "us-west-2"}, which=_has_all
    )
    (warning,) = [f for f in findings if f.level is Level.WARN]
    assert "us-west-2" in warning.what
    assert REGION in warning.fix


def test_no_python313_for_sam_build_is_missing_with_both_ways_out(fresh_account):
    findings = deploy_check.run_checks(fresh_account, _config(), environ={}, which=lambda _name: None)
    (build,) = [f for f in findings if "python3.13" in f.what]
    assert build.level is Level.MISSING
    assert "--use-container" in build.fix


def test_without_credentials_no_aws_check_runs(monkeypatch, tmp_path):
    # Given a shell with no credentials at all (and no instance metadata to fall back on)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # When checked, Then credentials are what is missing and nothing else is asked of AWS
    findings = deploy_check.run_checks(boto3.Session(), _config(), environ={}, which=_has_all)
    assert _levels(findings, "AWS credentials") == [Level.MISSING]
    assert not [f for f in findings if SECRET in f.what]


def test_main_exits_non_zero_and_prints_the_fix_when_something_is_missing(fresh_account, capsys):
    code = deploy_check.main(["--region", REGION])
    out = capsys.readouterr().out
    assert code == 1
    assert "MISSING" in out
    assert "fix: aws ssm put-parameter" in out
