"""The WebSocket API: its stage, routes, Lambda integrations, authorizers and route responses."""

from __future__ import annotations

from typing import Any

from ws_emulator.template.context import (
    AUTHORIZER,
    FUNCTION_ARN,
    INTEGRATION,
    ROUTE,
    ROUTE_RESPONSE,
    STAGE,
    TemplateContext,
)
from ws_emulator.template.specs import AuthorizerSpec, FunctionSpec, RouteSpec, WebSocketApiSpec


class WebSocketParts(TemplateContext):
    """Builds the WebSocketApiSpec of an `AWS::ApiGatewayV2::Api` with ProtocolType WEBSOCKET."""

    # -- WebSocket APIs -------------------------------------------------------------------------
    def _websocket_api(
        self, lid: str, active: dict[str, str], functions: dict[str, FunctionSpec]
    ) -> WebSocketApiSpec | None:
        props = self._props(lid)
        if str(props.get("ProtocolType", "")).upper() != "WEBSOCKET":
            return None
        api = _ApiParts(self, lid, self.physical(lid)["Ref"], active, functions)
        stage = next((str(p["StageName"]) for p in api.children(STAGE).values() if p.get("StageName")), None)
        if stage is None:
            stage = "local"
            self.warnings.append(f"{lid}: no AWS::ApiGatewayV2::Stage; serving stage {stage!r}")
        authorizers, authorizer_by_id = api.authorizers()
        return WebSocketApiSpec(
            logical_id=lid,
            api_id=api.api_id,
            name=str(props.get("Name") or lid),
            route_selection_expression=str(props.get("RouteSelectionExpression", "$request.body.action")),
            stage=stage,
            routes=api.routes(authorizer_by_id, api.integrations()),
            authorizers=authorizers,
        )


class _ApiParts:
    """The ApiGatewayV2 children (routes, integrations, authorizers) of one WebSocket API."""

    def __init__(
        self,
        builder: TemplateContext,
        lid: str,
        api_id: str,
        active: dict[str, str],
        functions: dict[str, FunctionSpec],
    ) -> None:
        self.b = builder
        self.lid = lid
        self.api_id = api_id
        self.active = active
        self.functions = functions

    def children(self, rtype: str) -> dict[str, dict[str, Any]]:
        out = {}
        for cid, t in self.active.items():
            if t == rtype:
                props = self.b._props(cid)
                if props.get("ApiId") == self.api_id:
                    out[cid] = props
        return out

    def function_for(self, cid: str, uri: Any) -> str | None:
        match = FUNCTION_ARN.search(str(uri or ""))
        if not match:
            return None
        for fid, spec in self.functions.items():
            if spec.name == match.group(1):
                return fid
        raise self.b.error(cid, f"integration target {match.group(0)} is not a function of this template")

    def authorizers(self) -> tuple[dict[str, AuthorizerSpec], dict[str, str]]:
        specs: dict[str, AuthorizerSpec] = {}
        by_id: dict[str, str] = {}
        for cid, p in self.children(AUTHORIZER).items():
            if str(p.get("AuthorizerType", "REQUEST")).upper() != "REQUEST":
                raise self.b.error(cid, "only REQUEST authorizers exist for WebSocket APIs")
            fid = self.function_for(cid, p.get("AuthorizerUri"))
            if fid is None:
                raise self.b.error(cid, f"AuthorizerUri {p.get('AuthorizerUri')!r} names no Lambda function")
            specs[cid] = AuthorizerSpec(cid, fid, [str(s) for s in p.get("IdentitySource") or []])
            by_id[self.b.physical(cid)["Ref"]] = cid
        return specs, by_id

    def integrations(self) -> dict[str, str | None]:
        """Integration id -> function logical id (None for non-Lambda integrations)."""
        out: dict[str, str | None] = {}
        for cid, p in self.children(INTEGRATION).items():
            itype = str(p.get("IntegrationType", ""))
            fid = self.function_for(cid, p.get("IntegrationUri"))
            if itype != "AWS_PROXY" or fid is None:
                self.b.warnings.append(f"{cid}: only AWS_PROXY Lambda integrations are emulated ({itype})")
            out[self.b.physical(cid)["Ref"]] = fid if itype == "AWS_PROXY" else None
        return out

    def routes(
        self, authorizer_by_id: dict[str, str], integration_fn: dict[str, str | None]
    ) -> dict[str, RouteSpec]:
        responded = {str(p.get("RouteId")) for p in self.children(ROUTE_RESPONSE).values()}
        routes: dict[str, RouteSpec] = {}
        for cid, p in self.children(ROUTE).items():
            key = p.get("RouteKey")
            if not isinstance(key, str):
                raise self.b.error(cid, "route has no RouteKey")
            target = str(p.get("Target") or "")
            function_id = None
            if target:
                integration_id = target.split("/", 1)[1] if target.startswith("integrations/") else ""
                if integration_id not in integration_fn:
                    raise self.b.error(cid, f"Target {target!r} is not an integration of this API")
                function_id = integration_fn[integration_id]
            auth_type = str(p.get("AuthorizationType", "NONE")).upper()
            authorizer_lid = None
            if auth_type == "CUSTOM":
                authorizer_lid = authorizer_by_id.get(str(p.get("AuthorizerId")))
                if authorizer_lid is None:
                    raise self.b.error(cid, "AuthorizationType CUSTOM needs an AuthorizerId of this API")
            has_response = self.b.physical(cid)["Ref"] in responded
            if has_response and not p.get("RouteResponseSelectionExpression"):
                self.b.warnings.append(
                    f"{cid}: RouteResponse but no RouteResponseSelectionExpression: no reply sent"
                )
                has_response = False
            routes[key] = RouteSpec(key, function_id, auth_type, authorizer_lid, has_response)
        return routes
