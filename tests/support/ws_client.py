"""The tests' and the benchmarks' side of the one WebSocket client, parley_client (clients/python):
tokens minted as the emulator mints them, and `Peer`, a `parley_client.Connection` (one socket,
requests matched to their replies, pushed events kept with batches unpacked) plus the assertions
tests share. tests/reliability/chat_client.py keeps books on a `parley_client.ParleyClient`, and
bench/clients.py counts marked messages on a `Connection` without parsing them. bench imports this
module (from the repository root, as `python -m bench` runs).
"""

from __future__ import annotations

import uuid
from typing import Any

from parley_client import Connection, protocol
from ws_emulator.gateway.devtokens import mint_token

# The reply each action gets (None: no reply); every other frame type is a pushed event. The Python
# client's map, which tests/unit/test_protocol_doc.py checks against protocol.py and docs/protocol.md.
REPLY = dict(protocol.REPLIES)
REPLY_TYPES = frozenset(kind for kind in REPLY.values() if kind) | {"error"}


def token(
    secret: str,
    user: str,
    workspace: str,
    *,
    name: str | None = None,
    expires_in_s: int = 3600,
    **claims: Any,
) -> str:
    """A user's HS256 token, minted as the emulator's token endpoint mints it."""
    return mint_token(secret, user, name=name, claims={"workspace": workspace, **claims}, ttl_s=expires_in_s)


def token_url(ws_url: str, secret: str, user: str, workspace: str, **kwargs: Any) -> str:
    """The WebSocket URL with the user's token in the query string, as the authorizer reads it."""
    return f"{ws_url}?token={token(secret, user, workspace, **kwargs)}"


class Peer(Connection):
    """A test's user on one connection: `request` answers with the reply, `events` holds every pushed
    event (batches unpacked) in order, `wait_for` and `of` find them; `send_raw`/`request_raw` for
    frames that are not JSON."""

    async def control(self, channel: str = "general", timeout: float = 30) -> str:
        """The positive control of an absence check: a marker message this peer sends now comes back
        to it through the fan-out, so the connection was receiving and whatever was posted to the
        channel before the marker has had its chance to arrive. The marker's text, to leave it out."""
        text = f"control-{uuid.uuid4().hex[:12]}"
        ack = await self.request({"action": "message", "channel": channel, "text": text}, timeout=timeout)
        assert ack["type"] == "ack", ack
        await self.wait_for(lambda e: e["type"] == "message" and e["text"] == text, timeout)
        return text
