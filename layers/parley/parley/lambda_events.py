"""Incoming Lambda events as models: Powertools' WebSocket models plus the authorizer context Parley sets."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketConnectEventRequestContext,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
    APIGatewayWebSocketMessageEventRequestContext,
)
from pydantic import BaseModel, BeforeValidator, Field

from parley.models import Caller, User


def _context_bool(value: Any) -> bool:
    # API Gateway may hand context values back as strings: only true (or "true") is true
    return value is True or (isinstance(value, str) and value.lower() == "true")


class AuthorizerContext(BaseModel):
    """Set by the authorizer at `$connect`; the only source of identity for every later event."""

    principal_id: str = Field(alias="principalId")
    user_id: str = Field(alias="userId")
    user_name: str = Field(alias="userName")
    workspace: str
    token_exp: int = Field(alias="tokenExp")  # API Gateway may hand context numbers back as strings
    admin: Annotated[bool, BeforeValidator(_context_bool)] = False  # absent: not an admin


class RouteRequestContext(APIGatewayWebSocketMessageEventRequestContext):
    authorizer: AuthorizerContext


class RouteEvent(APIGatewayWebSocketMessageEventModel):
    request_context: RouteRequestContext = Field(alias="requestContext")


class ConnectRequestContext(APIGatewayWebSocketConnectEventRequestContext):
    authorizer: AuthorizerContext


class ConnectEvent(APIGatewayWebSocketConnectEventModel):
    request_context: ConnectRequestContext = Field(alias="requestContext")


DisconnectEvent = APIGatewayWebSocketDisconnectEventModel


def caller_of(connection_id: str, request_id: str, auth: AuthorizerContext) -> Caller:
    return Caller(
        connection_id=connection_id,
        user=User(auth.user_id, auth.user_name),
        workspace=auth.workspace,
        token_expires_at=auth.token_exp,
        request_id=request_id,
        admin=auth.admin,
    )
