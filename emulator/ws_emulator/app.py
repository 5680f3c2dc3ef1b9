"""The emulator's life: start-up (template, AWS, functions, sources, servers), serve, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ws_emulator.aws.iam import Iam
from ws_emulator.aws.services import LocalAws
from ws_emulator.config import Config
from ws_emulator.errors import EmulatorError, TemplateError
from ws_emulator.faults import Faults
from ws_emulator.gateway.devtokens import mint_token
from ws_emulator.gateway.events import ApiInfo
from ws_emulator.gateway.lambda_invoke import LambdaInvokeApi
from ws_emulator.gateway.management import ManagementApi
from ws_emulator.gateway.model import AuthorizerDef, GatewayApi, GatewaySettings, RouteDef
from ws_emulator.gateway.origins import AccessPolicy
from ws_emulator.gateway.routing import CONNECT_ROUTE, RouteSelectionError, parse_expression
from ws_emulator.gateway.server import Gateway
from ws_emulator.gateway.static_site import Site
from ws_emulator.observe.dashboard import Dashboard
from ws_emulator.observe.recorder import InvocationRecorder
from ws_emulator.runtime.envvars import apply_env_vars
from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.runtime.reload import Watcher, affected_functions, describe_change
from ws_emulator.sources.reorder import stream_reorder
from ws_emulator.sources.supervisor import EventSources
from ws_emulator.template.loader import load_template
from ws_emulator.template.specs import Template, WebSocketApiSpec

DRAIN_TIMEOUT_S = 10.0
EVENT_LOGGER = "ws_emulator.events"
DASHBOARD_STATIC = Path(__file__).parent / "observe" / "static"


def build_gateway_api(template: Template, spec: WebSocketApiSpec, stage: str) -> tuple[GatewayApi, list[str]]:
    """The gateway's view of one API, and notes about what it does not emulate."""
    notes: list[str] = []
    try:
        selection = parse_expression(spec.route_selection_expression)
    except RouteSelectionError as exc:
        raise TemplateError(spec.logical_id, str(exc), template.path) from exc
    authorizers = {
        aid: AuthorizerDef(a.logical_id, a.function_id, tuple(a.identity_sources))
        for aid, a in spec.authorizers.items()
    }
    routes: dict[str, RouteDef] = {}
    for key, route in spec.routes.items():
        authorizer = None
        if route.authorization_type == "CUSTOM":
            if key != CONNECT_ROUTE:
                # AWS only runs authorizers on $connect; a template saying otherwise would fail to deploy.
                notes.append(
                    f"route {key}: AuthorizationType CUSTOM ignored (authorizers run on $connect only)"
                )
            elif route.authorizer_id in authorizers:
                authorizer = authorizers[route.authorizer_id]
            else:
                raise TemplateError(key, f"authorizer {route.authorizer_id!r} not found", template.path)
        elif route.authorization_type not in ("NONE", ""):
            notes.append(
                f"route {key}: AuthorizationType {route.authorization_type} not emulated (treated as NONE)"
            )
        if route.function_id is None:
            notes.append(f"route {key}: no Lambda proxy integration, messages are accepted and dropped")
        routes[key] = RouteDef(key, route.function_id, authorizer, route.has_route_response)
    info = ApiInfo(api_id=spec.api_id, stage=stage, region=template.region, account_id=template.account_id)
    api = GatewayApi(info, selection, routes, selection_text=spec.route_selection_expression)
    return api, notes


def _stream_polling(config: Config, aws: LocalAws) -> dict[str, Any]:
    """EventSources' stream settings: woken by the embedded server's writes, or a fixed poll interval."""
    if config.stream_poll_interval_s is not None:
        return {"poll_interval_s": config.stream_poll_interval_s}
    return {"writes": aws.writes} if aws.embedded else {}


def schedule_fallbacks(template: Template) -> dict[str, tuple[str, str]]:
    """Functions a schedule invokes: an event of no known shape for them came from that schedule."""
    return {
        fid: ("schedule", ",".join(s.event_id for s in f.schedules if s.enabled) or "schedule")
        for fid, f in template.functions.items()
        if any(s.enabled for s in f.schedules)
    }


def _token_query(api: GatewayApi) -> str | None:
    """The query parameter through which the `$connect` authorizer reads its token, if it reads one."""
    route = api.routes.get(CONNECT_ROUTE)
    if route is None or route.authorizer is None:
        return None
    prefix = "route.request.querystring."
    return next(
        (s.removeprefix(prefix) for s in route.authorizer.identity_sources if s.startswith(prefix)), None
    )


def _bind(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _access_policy(config: Config, ws_port: int) -> AccessPolicy:
    """origins.py's rules for both ports; a wildcard bind is also reached by this machine's names."""
    names: list[str] = []
    if config.host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        names = [socket.gethostname(), socket.getfqdn()]
    return AccessPolicy.build(config.host, ws_port, config.allowed_origins, names)


@dataclass(frozen=True)
class _Endpoints:
    ws_root: str
    ws_url: str
    management_url: str


class Emulator:
    """One emulated stack: startup() → serve → shutdown(); `run_emulator` wraps it for tests."""

    def __init__(self, config: Config, *, log: logging.Logger | None = None) -> None:
        self.config = config
        self.log = log or logging.getLogger("ws_emulator")
        self.template: Template | None = None
        self.aws: LocalAws | None = None
        self.runtime: FunctionRuntime | None = None
        self.sources: EventSources | None = None
        self.gateway: Gateway | None = None
        self.management: ManagementApi | None = None
        self.iam: Iam | None = None
        self.recorder: InvocationRecorder | None = None
        self.notes: list[str] = []
        self._endpoints: _Endpoints | None = None
        self.watcher: Watcher | None = None
        self._stack = contextlib.AsyncExitStack()

    # ---- addresses -------------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        """`ws://host:port/{stage}`, the local stand-in for `wss://{api}.execute-api.../{stage}`."""
        return self._require_endpoints().ws_url

    @property
    def management_url(self) -> str:
        """`http://host:port/{stage}`: boto3's endpoint_url for `apigatewaymanagementapi`."""
        return self._require_endpoints().management_url

    @property
    def page_url(self) -> str:
        """`http://host:port/`: the `--static-dir` page, same origin as the WebSocket endpoint."""
        return self._require_endpoints().ws_root.replace("ws://", "http://", 1) + "/"

    @property
    def dashboard_url(self) -> str:
        """`http://host:port/_emulator/`: the live dashboard, on the WebSocket port."""
        return self.page_url + "_emulator/"

    @property
    def lambda_url(self) -> str:
        """`http://host:port`: boto3's endpoint_url for `lambda` (the Invoke API), on the management port."""
        return self.management_url.rsplit("/", 1)[0]

    @property
    def admin_url(self) -> str:
        return self.management_url.rsplit("/", 1)[0] + "/_emulator"

    def _require_endpoints(self) -> _Endpoints:
        if self._endpoints is None:
            raise RuntimeError("the emulator has not started")
        return self._endpoints

    # ---- start-up --------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Load, provision and listen; on failure everything started so far is stopped again."""
        try:
            await self._startup()
        except BaseException:
            await self._stack.aclose()
            raise

    def _read_template(self) -> tuple[Template, Iam, str, GatewayApi]:
        """The template, its IAM roles, the stage and the API to serve; refuses what AWS would refuse."""
        config = self.config
        template, env_notes = self._load_template()
        self.template = template
        self.notes += env_notes
        iam = Iam(template, enforce=config.iam)
        self.iam = iam
        for function_id, why in iam.mapping_problems(template):
            # CloudFormation's CreateEventSourceMapping fails the same way, so the stack would not deploy.
            raise TemplateError(function_id, f"event source mapping refused: {why}", template.path)
        if not template.websocket_apis:
            raise TemplateError(
                "<template>", "no AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET", template.path
            )
        spec = template.websocket_apis[0]
        self.notes += [
            f"API {extra.logical_id} not served: one WebSocket API per emulator"
            for extra in template.websocket_apis[1:]
        ]
        stage = config.stage or spec.stage
        api, notes = build_gateway_api(template, spec, stage)
        self.notes += notes + list(template.warnings)
        return template, iam, stage, api

    async def _startup(self) -> None:
        config = self.config
        template, iam, stage, api = self._read_template()

        # Bind both ports first: functions get the local URLs in their environment before anything runs.
        ws_sock = _bind(config.host, config.port)
        self._stack.callback(ws_sock.close)
        mg_sock = _bind(config.host, config.resolved_management_port)
        self._stack.callback(mg_sock.close)
        host = config.host
        ws_port, mg_port = ws_sock.getsockname()[1], mg_sock.getsockname()[1]
        self._endpoints = _Endpoints(
            ws_root=f"ws://{host}:{ws_port}",
            ws_url=f"ws://{host}:{ws_port}/{stage}",
            management_url=f"http://{host}:{mg_port}/{stage}",
        )

        access = _access_policy(config, ws_port)

        # One Faults object for the @connections API and the local AWS; /_emulator/faults changes it.
        faults = Faults(
            config.fault_post_gone_rate,
            config.fault_post_throttle_rate,
            dynamodb_throttle_rate=config.fault_dynamodb_throttle_rate,
            transaction_conflict_rate=config.fault_transaction_conflict_rate,
        )
        aws = LocalAws(
            dynamodb_endpoint=config.dynamodb_endpoint,
            endpoint=config.aws_endpoint,
            region=template.region,
            faults=faults,
            log=logging.getLogger("ws_emulator.aws"),
            iam=iam,
        )
        await asyncio.to_thread(aws.start)
        self._stack.callback(aws.stop)
        self.aws = aws
        await asyncio.to_thread(aws.provision, template, dict(config.ssm_parameters))

        recorder = InvocationRecorder(
            event_log=logging.getLogger(EVENT_LOGGER),
            function_names={fid: f.name for fid, f in template.functions.items()},
            fallbacks=schedule_fallbacks(template),
        )
        self.recorder = recorder
        runtime = FunctionRuntime(
            template,
            observer=recorder.observe,
            # a function's own lambda.invoke() reaches the emulator's Invoke API, not moto's (runs no code)
            env_overrides={**aws.function_env(), "AWS_ENDPOINT_URL_LAMBDA": self.lambda_url},
            url_rewrites=self._url_rewrites(api.info),
            log=logging.getLogger("ws_emulator.runtime"),
            # Per-function keys name the caller to the IAM check (the embedded server only).
            # External endpoints (LocalStack reads the key as the account id) keep the shared keys.
            function_env=iam.credentials if aws.embedded and not config.dynamodb_endpoint else None,
        )
        await runtime.start()
        self._stack.push_async_callback(runtime.stop)
        self.runtime = runtime
        if config.warm:
            await self._warm(runtime)

        sources = EventSources(
            template,
            aws,
            runtime,
            ttl_sweep_interval_s=config.ttl_sweep_interval_s,
            log=logging.getLogger("ws_emulator.sources"),
            stream_order=stream_reorder(config.stream_reorder_seed) if config.stream_reorder else None,
            **_stream_polling(config, aws),
        )
        await sources.start()
        self._stack.push_async_callback(sources.stop)
        self.sources = sources

        gateway = Gateway(
            api,
            runtime,
            GatewaySettings(
                idle_timeout_s=config.idle_timeout_s,
                max_duration_s=config.max_connection_duration_s,
                connect_rate=config.connect_rate,
                frame_limit_bytes=config.frame_limit_bytes,
                message_limit_bytes=config.message_limit_bytes,
                shutdown_timeout_s=config.shutdown_timeout_s,
            ),
            log=logging.getLogger("ws_emulator.gateway"),
            event_log=logging.getLogger(EVENT_LOGGER),
            site=Site(config.static_dir, self._token_minter(), dashboard_root=DASHBOARD_STATIC),
            access=access,
            post_observer=recorder.count_post,
        )
        gateway.live = Dashboard(
            recorder,
            connections=gateway.live_connections,
            close=gateway.delete,
            dead_letters=sources.dead_letters,
            dev_tokens=self._token_minter() is not None,
            api_path=f"/{stage}",
            token_query=_token_query(api),
        )
        invoke_api = LambdaInvokeApi(
            lambda: self.template,
            runtime.invoke,
            authorize=lambda authorization, arn: _denial_message(iam.invoke_denial(authorization, arn)),
        )
        self._stack.push_async_callback(invoke_api.drain)  # Event invokes finish before functions stop
        event_log = logging.getLogger(EVENT_LOGGER)
        aws.events.listener = lambda entry: event_log.info(
            "EventBridge %s %s on %s%s",
            entry["source"],
            entry["detailType"],
            entry["eventBusName"],
            f" failed: {entry['errorCode']}" if entry["errorCode"] else "",
        )
        management = ManagementApi(
            gateway,
            stage=stage,
            log=logging.getLogger("ws_emulator.management"),
            dead_letters=sources.dead_letters,
            token_minter=self._token_minter(),
            faults=faults,
            info=self._health,
            message_limit_bytes=config.message_limit_bytes,
            authorize=self._connections_authorizer(iam, api.info),
            access=access,
            lambda_api=invoke_api.handle,
            put_events=lambda query: aws.events.recent(
                bus=query.get("bus"), after=int(query.get("after", "0") or 0)
            ),
        )
        # The management API outlives the gateway: `$disconnect` handlers and draining fan-out post to it.
        await management.start(mg_sock)
        self._stack.push_async_callback(management.stop)
        self.management = management
        await gateway.start(ws_sock)
        self._stack.push_async_callback(self._stop_gateway_and_drain, gateway)
        self.gateway = gateway
        if config.watch:
            watcher = Watcher(
                config.template,
                template,
                on_code_change=self._code_changed,
                on_template_change=self.reload_template,
                log=self.log,
            )
            await watcher.start()
            self._stack.push_async_callback(watcher.stop)
            self.watcher = watcher

    def _load_template(self) -> tuple[Template, list[str]]:
        config = self.config
        template = load_template(
            config.template, config.parameter_overrides, region=config.region, stack_name=config.stack_name
        )
        return apply_env_vars(template, config.env_vars)

    async def _warm(self, runtime: FunctionRuntime) -> None:
        errors = await runtime.warm()
        for fid, error in sorted(errors.items()):
            self.log.warning(
                "--warm: %s failed to initialise: %s: %s",
                fid,
                error.get("errorType"),
                error.get("errorMessage"),
            )

    # ---- hot reload ------------------------------------------------------------------------------

    def _code_changed(self, paths: set[Path]) -> None:
        if self.runtime is None or self.template is None:
            return
        functions = self.runtime.recycle(affected_functions(self.template, paths))
        if functions:
            self.log.info("%s", describe_change(paths, functions))

    async def reload_template(self) -> None:
        """The template file changed: take what can change in place, say what needs a restart.

        Function specs (code folder, handler, environment, layers, timeout, memory) are replaced and
        their warm workers recycled; routes and the authorizer are swapped in the gateway while open
        connections stay, as long as the API id and stage are the same. Tables, queues, event sources
        and the API's id or stage are provisioned at start-up only: a line names them.
        """
        old, runtime, gateway = self.template, self.runtime, self.gateway
        if old is None or runtime is None or gateway is None:
            return
        try:
            new, _ = await asyncio.to_thread(self._load_template)
            api = None
            if new.websocket_apis:
                stage = self.config.stage or new.websocket_apis[0].stage
                api, _ = build_gateway_api(new, new.websocket_apis[0], stage)
        except (EmulatorError, OSError, ValueError) as exc:
            self.log.error("reload: %s not taken, still serving the previous one: %s", old.path.name, exc)
            return
        restart = _needs_restart(old, new)
        if api is None or api.info != gateway.api.info:
            restart.append("the WebSocket API (its id or stage)")
        elif api != gateway.api:
            gateway.api = api  # the gateway reads its routes per message: open connections stay
            self.log.info("reload: routes and authorizer updated; open connections stay")
        self.template = new
        changed = runtime.update_template(new)
        if self.watcher is not None:
            await self.watcher.retarget(new)
        if changed:
            self.log.info(
                "reload: %s changed; %s get fresh workers", new.path.name, ", ".join(sorted(changed))
            )
        if restart:
            self.log.warning("reload: restart the emulator to apply changes to %s", ", ".join(restart))

    def _url_rewrites(self, info: ApiInfo) -> dict[str, str]:
        endpoints = self._require_endpoints()
        aws_host = info.domain_name
        return {
            f"https://{aws_host}/{info.stage}": endpoints.management_url,
            f"https://{aws_host}": endpoints.management_url.rsplit("/", 1)[0],
            f"wss://{aws_host}/{info.stage}": endpoints.ws_url,
            f"wss://{aws_host}": endpoints.ws_root,
        }

    @staticmethod
    def _connections_authorizer(iam: Iam, info: ApiInfo) -> Callable[[str | None, str, str], str | None]:
        """execute-api:ManageConnections for a function's @connections call: the denial, or None."""

        def authorize(authorization: str | None, method: str, connection_id: str) -> str | None:
            denial = iam.connections_denial(authorization, info.api_id, info.stage, method, connection_id)
            return denial.message if denial else None

        return authorize

    def _token_minter(self) -> Callable[[str, str | None], str] | None:
        secret = self.config.dev_token_secret
        if not secret:
            return None
        claims = dict(self.config.dev_token_claims)
        return lambda sub, name: mint_token(secret, sub, name=name, claims=claims)

    def _health(self) -> dict[str, Any]:
        gateway = self.gateway
        return {
            "websocketUrl": self.ws_url,
            "managementUrl": self.management_url,
            "lambdaUrl": self.lambda_url,
            "connections": len(gateway.connections) if gateway else 0,
            "awsEndpoint": self.aws.endpoint_url if self.aws else None,
            # `@connections` posts since start, by outcome: what functions posted, whatever client they used
            "posts": dict(self.recorder.post_totals) if self.recorder else {},
        }

    # ---- shutdown --------------------------------------------------------------------------------

    async def _stop_gateway_and_drain(self, gateway: Gateway) -> None:
        # Like uvicorn: stop accepting, end open connections (each gets its $disconnect), then let
        # streams and queues deliver what those handlers wrote before functions and moto go away.
        await gateway.shutdown()
        if self.sources is None:
            return
        try:
            await self.sources.drain(DRAIN_TIMEOUT_S)
        except Exception:
            self.log.exception("draining event sources failed")

    async def shutdown(self) -> None:
        """Stop in reverse order of start-up; safe to call twice."""
        await self._stack.aclose()
        self.gateway = None


def _denial_message(denial: Any) -> str | None:
    return None if denial is None else str(denial.message)


def _needs_restart(old: Template, new: Template) -> list[str]:
    """What a reloaded template changes that only a restart applies (provisioned at start-up)."""
    parts = []
    if old.tables != new.tables:
        parts.append("tables")
    if old.queues != new.queues:
        parts.append("queues")
    sources = [
        {fid: (s.stream_sources, s.sqs_sources, s.schedules) for fid, s in t.functions.items()}
        for t in (old, new)
    ]
    if sources[0] != sources[1]:
        parts.append("event sources")
    return parts


@contextlib.asynccontextmanager
async def run_emulator(config: Config) -> AsyncIterator[Emulator]:
    """`async with run_emulator(config) as emu:` exposes ws_url, management_url, runtime and aws."""
    emulator = Emulator(config)
    await emulator.startup()
    try:
        yield emulator
    finally:
        await emulator.shutdown()
