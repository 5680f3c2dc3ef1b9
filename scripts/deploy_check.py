"""Preflight for `sam deploy`: read-only AWS calls that say what a fresh account or machine still lacks.

CloudFormation reports a missing account setting only after it has created half a stack and rolled it
back; this says it first, with the command that fixes it. Nothing here writes to AWS.
Run it as `make deploy-check` (or `python scripts/deploy_check.py --help`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parents[1]
CLOUDWATCH_ROLE = "APIGatewayCloudWatchLogs"
AWS_MANAGED_SSM_KEY = "alias/aws/ssm"


class Level(Enum):
    OK = "ok"
    WARN = "warn"
    MISSING = "MISSING"


@dataclass(frozen=True)
class Finding:
    level: Level
    what: str
    fix: str = ""


@dataclass(frozen=True)
class DeployConfig:
    """What `sam deploy` would use: the region and the template parameters after samconfig's overrides."""

    region: str
    region_source: str
    parameters: dict[str, str]


class ConfigError(Exception):
    """samconfig.toml or the command line names something unusable."""


# ---------------------------------------------------------------- what sam deploy would use


class _AnyTagLoader(yaml.SafeLoader):
    """Reads a CloudFormation template for its Parameters only: every short tag (!Ref...) becomes None."""


_AnyTagLoader.add_multi_constructor("!", lambda _loader, _suffix, _node: None)


def template_defaults(template: Path) -> dict[str, str]:
    doc = yaml.load(template.read_text(), Loader=_AnyTagLoader)  # noqa: S506 - a SafeLoader subclass
    return {
        name: str(spec.get("Default", ""))
        for name, spec in (doc.get("Parameters") or {}).items()
        if isinstance(spec, dict)
    }


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """`Key=Value` pairs as sam takes them (`Key=""` is empty); shell-style quoting allowed."""
    parsed: dict[str, str] = {}
    for item in items:
        for word in shlex.split(item):
            key, sep, value = word.partition("=")
            if not sep or not key:
                raise ConfigError(f"parameter override {word!r} is not Key=Value")
            parsed[key] = value
    return parsed


def deploy_config(
    samconfig: Path,
    template: Path,
    *,
    config_env: str = "default",
    region: str | None = None,
    overrides: Sequence[str] = (),
) -> DeployConfig:
    params = template_defaults(template)
    deploy: dict[str, Any] = {}
    if samconfig.exists():
        with samconfig.open("rb") as fh:
            doc = tomllib.load(fh)
        if config_env not in doc:
            raise ConfigError(f"{samconfig.name} has no [{config_env}] environment")
        deploy = doc[config_env].get("deploy", {}).get("parameters", {})
        raw = deploy.get("parameter_overrides", [])
        params.update(parse_overrides([raw] if isinstance(raw, str) else list(raw)))
    params.update(parse_overrides(overrides))
    if region:
        return DeployConfig(region, "--region", params)
    if deploy.get("region"):
        return DeployConfig(str(deploy["region"]), f"{samconfig.name} [{config_env}]", params)
    env_region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if env_region:
        return DeployConfig(env_region, "the environment", params)
    raise ConfigError(f"no region: pass --region or set region in {samconfig.name}")


# ---------------------------------------------------------------- the checks


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def check_region(config: DeployConfig, environ: dict[str, str]) -> list[Finding]:
    found = [Finding(Level.OK, f"region {config.region} (from {config.region_source})")]
    shell = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if shell and shell != config.region:
        found.append(
            Finding(
                Level.WARN,
                f"your shell's default region is {shell}, the stack's is {config.region}: an `aws` command "
                f"without --region (put-parameter!) would act on {shell}",
                f"pass --region {config.region} to every command, or export AWS_REGION={config.region}",
            )
        )
    return found


def check_identity(session: boto3.Session, region: str) -> tuple[list[Finding], str | None]:
    try:
        who = session.client("sts", region_name=region).get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        return [
            Finding(
                Level.MISSING,
                f"AWS credentials ({type(exc).__name__})",
                "configure credentials: `aws configure`, `aws sso login` or AWS_PROFILE",
            )
        ], None
    account = str(who["Account"])
    return [Finding(Level.OK, f"credentials for account {account} ({who['Arn']})")], account


def check_jwks(config: DeployConfig) -> list[Finding]:
    params = config.parameters
    missing = [name for name in ("JwtIssuer", "JwtAudience") if not params.get(name)]
    if missing:
        return [
            Finding(
                Level.MISSING,
                f"JwksUrl is set but {' and '.join(missing)} not: tokens of any other app of the same "
                "identity provider would be accepted",
                "set JwtIssuer and JwtAudience in parameter_overrides",
            )
        ]
    return [Finding(Level.OK, f"JWKS verification ({params['JwksUrl']}), issuer and audience set")]


def check_signing_secret(session: boto3.Session, config: DeployConfig) -> list[Finding]:
    """The HS256 secret: CloudFormation cannot create a SecureString, so it must exist before the deploy."""
    if config.parameters.get("JwksUrl"):
        return check_jwks(config)
    name = config.parameters.get("JwtSecretParameterName", "")
    create = (
        f"aws ssm put-parameter --region {config.region} --type SecureString --name {name} "
        '--value "$(openssl rand -base64 48)"'
    )
    try:
        found = (
            session.client("ssm", region_name=config.region)
            .describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
            .get("Parameters", [])
        )
    except ClientError as exc:
        return [Finding(Level.WARN, f"could not check SSM parameter {name} ({_error_code(exc)})")]
    if not found:
        return [Finding(Level.MISSING, f"SSM SecureString {name} (the HS256 signing secret)", create)]
    param = found[0]
    if param.get("Type") != "SecureString":
        what = f"SSM parameter {name} is a {param.get('Type')}, not a SecureString"
        return [Finding(Level.MISSING, what, f"delete it and create it again: {create}")]
    if param.get("KeyId", AWS_MANAGED_SSM_KEY) != AWS_MANAGED_SSM_KEY:
        what = (
            f"SSM SecureString {name} uses the key {param['KeyId']}: AuthorizerFunction is granted no "
            "kms:Decrypt on it"
        )
        return [Finding(Level.WARN, what, f"re-create it with the AWS managed key ({AWS_MANAGED_SSM_KEY})")]
    return [Finding(Level.OK, f"SSM SecureString {name}")]


def cloudwatch_role_commands(region: str, account: str) -> str:
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"apigateway.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
    )
    return "\n".join(
        [
            f"aws iam create-role --role-name {CLOUDWATCH_ROLE} --assume-role-policy-document '{trust}'",
            f"aws iam attach-role-policy --role-name {CLOUDWATCH_ROLE} --policy-arn "
            "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            f"aws apigateway update-account --region {region} --patch-operations "
            f"op=replace,path=/cloudwatchRoleArn,value=arn:aws:iam::{account}:role/{CLOUDWATCH_ROLE}",
        ]
    )


def check_access_logging(session: boto3.Session, config: DeployConfig, account: str) -> list[Finding]:
    if config.parameters.get("AccessLogging", "Disabled") != "Enabled":
        return [Finding(Level.OK, "access logging off (AccessLogging=Disabled): no account setting needed")]
    try:
        role = session.client("apigateway", region_name=config.region).get_account().get("cloudwatchRoleArn")
    except ClientError as exc:
        return [Finding(Level.WARN, f"could not read API Gateway's account settings ({_error_code(exc)})")]
    if not role:
        return [
            Finding(
                Level.MISSING,
                f"API Gateway's CloudWatch Logs role in {config.region} (AccessLogging=Enabled needs it, or "
                "the stage fails with 'CloudWatch Logs role ARN must be set in account settings')",
                cloudwatch_role_commands(config.region, account),
            )
        ]
    return [Finding(Level.OK, f"API Gateway CloudWatch Logs role {role}")]


def check_build_tools(which: Callable[[str], str | None]) -> list[Finding]:
    found: list[Finding] = []
    if which("python3.13"):
        found.append(Finding(Level.OK, "python3.13 on PATH (sam build's runtime)"))
    else:
        found.append(
            Finding(
                Level.MISSING,
                "python3.13 on PATH: `sam build` builds the python3.13 runtime with it",
                "install Python 3.13 (with pyenv: PYENV_VERSION=3.11.7:3.13.0), "
                "or `sam build --use-container`",
            )
        )
    if not (which("sam") or (ROOT / ".venv-sam" / "bin" / "sam").exists()):
        found.append(
            Finding(Level.WARN, "no `sam` on PATH", "`make template-check` builds it into .venv-sam")
        )
    return found


def run_checks(
    session: boto3.Session,
    config: DeployConfig,
    *,
    environ: dict[str, str],
    which: Callable[[str], str | None] = shutil.which,
) -> list[Finding]:
    findings = check_region(config, environ) + check_build_tools(which)
    identity, account = check_identity(session, config.region)
    findings += identity
    if account is None:  # nothing else can be read without credentials
        return findings
    return findings + check_signing_secret(session, config) + check_access_logging(session, config, account)


# ---------------------------------------------------------------- command line


def render(findings: Sequence[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{finding.level.value:>7}  {finding.what}")
        lines.extend(
            f"         fix: {line}" for line in finding.fix.splitlines() if finding.level != Level.OK
        )
    missing = sum(f.level is Level.MISSING for f in findings)
    lines.append(
        f"{missing} missing: fix them before `sam deploy`"
        if missing
        else "ready for `sam deploy` (no changes made)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy-check", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config-env", default="default", help="samconfig.toml environment (default: default)"
    )
    parser.add_argument("--region", help="overrides samconfig.toml's region")
    parser.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    parser.add_argument("--samconfig", type=Path, default=ROOT / "samconfig.toml")
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE", help="as for sam deploy"
    )
    args = parser.parse_args(argv)
    try:
        config = deploy_config(
            args.samconfig,
            args.template,
            config_env=args.config_env,
            region=args.region,
            overrides=args.parameter_overrides,
        )
    except (ConfigError, OSError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        print(f"deploy-check: {exc}", file=sys.stderr)
        return 2
    try:
        session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    except BotoCoreError as exc:  # e.g. ProfileNotFound
        print(f"deploy-check: {exc}", file=sys.stderr)
        return 2
    findings = run_checks(session, config, environ=dict(os.environ))
    print(render(findings))
    return 1 if any(f.level is Level.MISSING for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
