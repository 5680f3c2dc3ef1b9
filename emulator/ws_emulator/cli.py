"""`ws-emulator`: serve a SAM WebSocket template locally, mint development tokens, list dead letters."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import shlex
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TextIO

from ws_emulator.app import EVENT_LOGGER, Emulator
from ws_emulator.config import DEFAULT_HOST, DEFAULT_PORT, LOCALSTACK, Config, parse_assignments
from ws_emulator.errors import ConfigError, EmulatorError, TemplateError
from ws_emulator.gateway import limits
from ws_emulator.gateway.devtokens import DEFAULT_TTL_S, DEV_TOKEN_SECRET, mint_token, parse_claims
from ws_emulator.gateway.routing import CONNECT_ROUTE
from ws_emulator.observe.lines import event_formatter
from ws_emulator.runtime.envvars import load_env_vars

# ---- arguments --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ws-emulator",
        description="Local emulator of API Gateway WebSocket APIs defined in a SAM template.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the template's WebSocket API and its functions")
    serve.add_argument(
        "--template", "-t", default="template.yaml", help="SAM template (default: %(default)s)"
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="WebSocket port (default: %(default)s)")
    serve.add_argument("--management-port", type=int, help="@connections API port (default: --port + 1)")
    serve.add_argument("--stage", help="stage name in URLs and events (default: the template's Stage)")
    serve.add_argument("--region", default="us-east-1", help="AWS::Region (default: %(default)s)")
    serve.add_argument("--stack-name", default="local", help="AWS::StackName (default: %(default)s)")
    serve.add_argument(
        "--parameter-overrides", nargs="+", metavar="K=V", default=[], help="template parameter values"
    )
    serve.add_argument(
        "--ssm-parameter",
        action="append",
        metavar="NAME=VALUE",
        default=[],
        help="SSM SecureString to create before functions start (repeatable)",
    )
    serve.add_argument(
        "--dynamodb-endpoint", metavar="URL", help="use this DynamoDB instead of the embedded one"
    )
    serve.add_argument(
        "--localstack",
        nargs="?",
        const=LOCALSTACK,
        metavar="URL",
        help="use LocalStack for every AWS service (default: found like localstack-client, LOCALSTACK_HOST)",
    )
    serve.add_argument(
        "--idle-timeout", type=float, default=limits.IDLE_TIMEOUT_S, metavar="S", help="default: 600 (AWS)"
    )
    serve.add_argument(
        "--max-connection-duration",
        type=float,
        default=limits.MAX_CONNECTION_DURATION_S,
        metavar="S",
        help="default: 7200 (AWS)",
    )
    serve.add_argument(
        "--ttl-sweep-interval", type=float, default=1.0, metavar="S", help="DynamoDB TTL sweep period"
    )
    serve.add_argument(
        "--stream-poll-interval",
        type=float,
        default=None,
        metavar="S",
        help="read each DynamoDB stream shard every S seconds, as Lambda does (about 0.25 on AWS); "
        "default: as soon as its table is written (embedded DynamoDB; else every 0.1 s)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="on Ctrl-C, wait at most S seconds for open connections' $disconnect (default: %(default)s)",
    )
    serve.add_argument(
        "--connect-rate",
        type=float,
        default=limits.CONNECT_RATE_PER_S,
        metavar="N",
        help="new connections per second before HTTP 429 (default: 500, AWS)",
    )
    serve.add_argument(
        "--dev-token-secret",
        metavar="S",
        help="enable /_emulator/token and --dev-users (HS256); only the built-in development secret "
        f"is accepted: {DEV_TOKEN_SECRET}",
    )
    serve.add_argument("--dev-token-claims", metavar="JSON", help="extra claims for development tokens")
    serve.add_argument(
        "--static-dir", metavar="DIR", help="serve this folder's files over plain HTTP on the WebSocket port"
    )
    serve.add_argument("--dev-users", metavar="A,B", help="print a token and a wscat line for each user")
    serve.add_argument("--fault-post-gone-rate", type=float, default=0.0, metavar="P", help=argparse.SUPPRESS)
    serve.add_argument(
        "--fault-post-throttle-rate", type=float, default=0.0, metavar="P", help=argparse.SUPPRESS
    )
    serve.add_argument(
        "--fault-dynamodb-throttle-rate", type=float, default=0.0, metavar="P", help=argparse.SUPPRESS
    )
    serve.add_argument(
        "--fault-transaction-conflict-rate", type=float, default=0.0, metavar="P", help=argparse.SUPPRESS
    )
    serve.add_argument(
        "--no-watch",
        dest="watch",
        action="store_false",
        help="no hot reload (by default code, layer and template changes are picked up while running)",
    )
    serve.add_argument(
        "--warm", action="store_true", help="initialise every function at start-up (no first cold start)"
    )
    serve.add_argument(
        "--env-vars",
        metavar="FILE",
        help='override function environments, as sam local: {"Parameters": {...}, "FunctionId": {...}}',
    )
    serve.add_argument(
        "--stream-reorder",
        action="store_true",
        help="deliver stream records of different items interleaved, as DynamoDB may (tests recovery)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept WebSocket handshakes from pages of this origin, e.g. http://localhost:5173 "
        "(repeatable; the emulator's own page origins are always accepted)",
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (exposes the admin and token endpoints to the network)",
    )
    serve.add_argument("--quiet", "-q", action="store_true", help="no per-event log lines")
    serve.add_argument(
        "--no-iam",
        dest="iam",
        action="store_false",
        help="do not check the functions' AWS calls against their roles' policies",
    )
    serve.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default: %(default)s)"
    )
    serve.add_argument(
        "--log-format",
        default="text",
        help="event lines as text, or json: one object a line on stdout, the banner on stderr "
        "(default: %(default)s)",
    )

    token = commands.add_parser("token", help="print a development token (HS256 JWT)")
    token.add_argument(
        "--secret", default=DEV_TOKEN_SECRET, help="HS256 secret (default: the built-in development secret)"
    )
    token.add_argument("--sub", required=True)
    token.add_argument("--name")
    token.add_argument("--claims", metavar="JSON")
    token.add_argument("--ttl", type=int, default=DEFAULT_TTL_S, metavar="S", help="default: %(default)s")

    dead = commands.add_parser("dead-letters", help="list the dead-letter queues of a running emulator")
    dead.add_argument("--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT + 1}", help="its management URL")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """Build and validate the Config; raises ConfigError with the option's name."""
    try:
        claims = parse_claims(args.dev_token_claims)
    except ValueError as exc:
        raise ConfigError(f"--dev-token-claims: {exc}") from exc
    users = tuple(user.strip() for user in (args.dev_users or "").split(",") if user.strip())
    return Config(
        template=args.template,
        host=args.host,
        port=args.port,
        management_port=args.management_port,
        stage=args.stage,
        region=args.region,
        stack_name=args.stack_name,
        parameter_overrides=parse_assignments(args.parameter_overrides, "--parameter-overrides"),
        ssm_parameters=parse_assignments(args.ssm_parameter, "--ssm-parameter"),
        dynamodb_endpoint=args.dynamodb_endpoint,
        aws_endpoint=args.localstack,
        idle_timeout_s=args.idle_timeout,
        max_connection_duration_s=args.max_connection_duration,
        ttl_sweep_interval_s=args.ttl_sweep_interval,
        stream_poll_interval_s=args.stream_poll_interval,
        connect_rate=args.connect_rate,
        shutdown_timeout_s=args.shutdown_timeout,
        dev_token_secret=args.dev_token_secret,
        dev_token_claims=claims,
        dev_users=users,
        static_dir=args.static_dir,
        fault_post_gone_rate=args.fault_post_gone_rate,
        fault_post_throttle_rate=args.fault_post_throttle_rate,
        fault_dynamodb_throttle_rate=args.fault_dynamodb_throttle_rate,
        fault_transaction_conflict_rate=args.fault_transaction_conflict_rate,
        watch=args.watch,
        warm=args.warm,
        env_vars=load_env_vars(args.env_vars) if args.env_vars else {},
        stream_reorder=args.stream_reorder,
        quiet=args.quiet,
        log_level=args.log_level,
        iam=args.iam,
        allowed_origins=tuple(args.allow_origin),
        allow_remote=args.allow_remote,
        log_format=args.log_format,
    )


# ---- output ---------------------------------------------------------------------------------------------


def configure_logging(config: Config) -> None:
    """Diagnostics to stderr; one line per event to stdout (off with --quiet)."""
    root = logging.getLogger()
    root.handlers.clear()
    diagnostics = logging.StreamHandler(sys.stderr)
    diagnostics.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root.addHandler(diagnostics)
    root.setLevel(config.log_level)
    # Libraries speak only when something is wrong, unless DEBUG was asked for.
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "ws_emulator.websockets"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if config.log_level == "DEBUG" else logging.WARNING)
    events = logging.getLogger(EVENT_LOGGER)
    events.handlers.clear()
    events.propagate = False
    line = logging.StreamHandler(sys.stdout)
    line.setFormatter(event_formatter(config.log_format))
    events.addHandler(line)
    events.setLevel(logging.WARNING if config.quiet else logging.INFO)


def _identity_hint(emulator: Emulator) -> tuple[str | None, str | None]:
    """(query parameter, header) through which the `$connect` authorizer expects its token."""
    gateway = emulator.gateway
    route = gateway.api.routes.get(CONNECT_ROUTE) if gateway else None
    if route is None or route.authorizer is None:
        return None, None
    for source in route.authorizer.identity_sources:
        if source.startswith("route.request.querystring."):
            return source.removeprefix("route.request.querystring."), None
    for source in route.authorizer.identity_sources:
        if source.startswith("route.request.header."):
            return None, source.removeprefix("route.request.header.")
    return None, None


def banner(emulator: Emulator) -> str:
    """What the emulator serves and how to reach it, printed once at start-up."""
    config, gateway, template = emulator.config, emulator.gateway, emulator.template
    assert gateway is not None and template is not None and emulator.aws is not None
    api = gateway.api
    lines = [
        f"ws-emulator serving {config.template} (stack {template.stack_name}, region {template.region})",
        f"  WebSocket     {emulator.ws_url}  (also {emulator.ws_url.rsplit('/', 1)[0]}/)",
        f"  @connections  {emulator.management_url}  (stands in for https://{api.info.domain_name}/{api.info.stage})",
        f"  admin         {emulator.admin_url}/health, /connections, /dead-letters",
        f"  dashboard     {emulator.dashboard_url}  (connections, invocations, latency, try it)",
    ]
    if config.static_dir is not None:
        lines.append(f"  web page      {emulator.page_url}  (files from {config.static_dir})")
    lines += [
        f"  AWS services  {emulator.aws.endpoint_url}"
        + ("  (embedded moto)" if emulator.aws.embedded else ""),
        f"  IAM           {_iam_summary(emulator)}",
        f"  routes ({api.selection_text}):",
    ]
    if emulator.watcher is not None:
        lines.insert(
            -1,
            f"  hot reload    {len(emulator.watcher.roots)} code/layer folder(s) and the template"
            " (--no-watch: off)",
        )
    if config.warm:
        lines.insert(-1, "  warm          every function initialised at start-up (--warm)")
    width = max((len(key) for key in api.routes), default=0)
    for key, route in sorted(api.routes.items(), key=lambda item: (not item[0].startswith("$"), item[0])):
        extras = []
        if route.authorizer is not None:
            sources = ", ".join(route.authorizer.identity_sources)
            extras.append(f"authorizer {route.authorizer.function_id} [{sources}]")
        if route.has_route_response:
            extras.append("route response")
        target = route.function_id or "(no integration)"
        lines.append(f"    {key:<{width}}  -> {target}" + (f"  ({'; '.join(extras)})" if extras else ""))
    if template.ignored:
        lines.append(f"  ignored (no local effect): {_ignored_summary(template.ignored)}")
    lines += [f"  note: {note}" for note in emulator.notes]
    lines += _dev_user_lines(emulator)
    lines.append("Ctrl-C stops: open connections get $disconnect, event sources are drained.")
    return "\n".join(lines)


def _iam_summary(emulator: Emulator) -> str:
    iam, aws = emulator.iam, emulator.aws
    if iam is None or not iam.enforce:
        return "not enforced (--no-iam): every call is allowed"
    if aws is None or not aws.embedded or emulator.config.dynamodb_endpoint:
        return "not checked here: AWS calls go to an external endpoint, which decides"
    return (
        f"enforced: each function's calls are checked against its role "
        f"({len(iam.checked_functions)} of {len(emulator.template.functions) if emulator.template else 0} "
        "functions; --no-iam turns it off)"
    )


def _ignored_summary(ignored: Sequence[str]) -> str:
    """`Alarm (AWS::CloudWatch::Alarm)` entries grouped by type, so a big template stays on one line."""
    by_type: dict[str, list[str]] = {}
    for entry in ignored:
        name, _, kind = entry.partition(" (")
        by_type.setdefault(kind.rstrip(")") or "?", []).append(name)
    return ", ".join(
        f"{names[0]} ({kind})" if len(names) == 1 else f"{len(names)} {kind}"
        for kind, names in sorted(by_type.items())
    )


def _dev_user_lines(emulator: Emulator) -> list[str]:
    config = emulator.config
    if not config.dev_users or not config.dev_token_secret:
        return []
    query_name, header = _identity_hint(emulator)
    root = emulator.ws_url.rsplit("/", 1)[0]
    lines = ["  development users (tokens valid 1 h; more at /_emulator/token?sub=NAME):"]
    for user in config.dev_users:
        token = mint_token(
            config.dev_token_secret, user, name=user.capitalize(), claims=dict(config.dev_token_claims)
        )
        if query_name:
            command = f"wscat -c {shlex.quote(f'{root}/?{query_name}={token}')}"
        elif header:
            command = f"wscat -c {shlex.quote(root + '/')} -H {shlex.quote(f'{header}: {token}')}"
        else:
            command = f"wscat -c {shlex.quote(root + '/')}  # token: {token}"
        lines.append(f"    {user}: {command}")
    return lines


def template_error_message(exc: TemplateError, template_path: str) -> str:
    """One paragraph a person can act on, without a traceback."""
    where = exc.path or template_path
    return (
        f"ws-emulator cannot serve {where}: resource {exc.logical_id}: {exc.message}. "
        "Fix the template (or override its parameters with --parameter-overrides) and start again; "
        "docs/emulator.md lists what the emulator supports."
    )


# ---- commands -------------------------------------------------------------------------------------------


async def serve_until_signalled(config: Config, *, out: TextIO = sys.stdout) -> int:
    """Run until SIGINT/SIGTERM, then shut down like uvicorn; returns the exit status."""
    if config.remote_warning:
        print(config.remote_warning, file=sys.stderr, flush=True)
    emulator = Emulator(config)
    try:
        await emulator.startup()
    except TemplateError as exc:
        print(template_error_message(exc, str(config.template)), file=sys.stderr)
        return 2
    except EmulatorError as exc:
        # e.g. a schedule expression only the event sources parse: one line, no traceback
        print(f"ws-emulator cannot start: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ws-emulator cannot start: {exc}", file=sys.stderr)
        return 1
    print(banner(emulator), file=out, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received = 0

    def on_signal() -> None:
        nonlocal received
        received += 1
        if received > 1:
            # A second Ctrl-C while draining: the user wants out now.
            print("forced exit", file=sys.stderr, flush=True)
            os._exit(130)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    await stop.wait()
    print("shutting down: closing connections ($disconnect), draining event sources", file=out, flush=True)
    await emulator.shutdown()
    print("stopped", file=out, flush=True)
    return 0


def _token(args: argparse.Namespace) -> int:
    try:
        claims = parse_claims(args.claims)
        print(mint_token(args.secret, args.sub, name=args.name, claims=claims, ttl_s=args.ttl))
    except ValueError as exc:
        print(f"ws-emulator token: {exc}", file=sys.stderr)
        return 2
    return 0


def _dead_letters(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/")
    # Accept the @connections URL with its stage too: the admin endpoints live at the root.
    base = url.split("/", 3)
    root = "/".join(base[:3]) if len(base) > 3 else url
    try:
        with urllib.request.urlopen(f"{root}/_emulator/dead-letters", timeout=10) as response:  # noqa: S310
            document = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"ws-emulator dead-letters: cannot reach {root}: {exc}", file=sys.stderr)
        return 1
    queues = document.get("deadLetters", {})
    if not any(queues.values()):
        print("no dead letters")
        return 0
    for queue, messages in queues.items():
        print(f"{queue}: {len(messages)} message(s)")
        for message in messages:
            print("  " + json.dumps(message, sort_keys=True))
    return 0


def line_buffered(stream: TextIO) -> None:
    """Write `stream` out at every newline, as on a terminal.

    Redirected to a file or a pipe, Python block-buffers stdout: a line printed without flush (a
    handler's print, any later output) would show up only kilobytes later in the log file.
    """
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(line_buffering=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ws-emulator` console script."""
    line_buffered(sys.stdout)
    args = _parser().parse_args(argv)
    if args.command == "token":
        return _token(args)
    if args.command == "dead-letters":
        return _dead_letters(args)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"ws-emulator: {exc}", file=sys.stderr)
        return 2
    configure_logging(config)
    try:
        # With JSON event lines stdout stays parseable: the banner and shutdown lines go to stderr.
        out = sys.stderr if config.log_format == "json" else sys.stdout
        return asyncio.run(serve_until_signalled(config, out=out))
    except KeyboardInterrupt:  # pragma: no cover - signal handlers normally catch it first
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
