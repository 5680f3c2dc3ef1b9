"""The emulator restarted under its clients: they reconnect, re-join with `since` and miss nothing.

Both emulators use the same AWS (a moto server of this test on 127.0.0.1), as a redeployed stack
keeps its tables. The first one shuts down gracefully (every connection closed with 1001 and its
`$disconnect` run), so no connection of it is left behind in the tables.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from functools import partial

import pytest

from tests.reliability.chat_client import ChatClient
from tests.reliability.conftest import report, serve, token


@pytest.fixture
def shared_aws() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


async def test_clients_recover_everything_across_an_emulator_restart(shared_aws: str, workspace: str) -> None:
    current = {"url": ""}

    def url(user: str) -> str:
        return f"{current['url']}?token={token(user, workspace)}"

    clients = [
        ChatClient(partial(url, user), user, ["general"]) for user in ("alice", "bob", "carol", "dave")
    ]
    acked: dict[str, str] = {}
    stack = f"restart{uuid.uuid4().hex[:6]}"  # the same tables for both emulators
    with serve(aws_endpoint=shared_aws, stack_name=stack) as first:
        # GIVEN four clients talking through the first emulator
        current["url"] = first.ws_url
        for client in clients:
            await client.open()
        for client in clients[:2]:
            for i in range(3):
                acked[(await client.say("general", f"before {i}"))["id"]] = "general"
        assert [await c.wait_for_all(acked, 30) for c in clients] == [[]] * len(clients)
        old_ids = set(first.emulator.gateway.connections)
    # WHEN it stops (every client is closed with 1001) and a new one starts on the same tables
    for client in clients:
        await asyncio.wait_for(client.closed_by_server.wait(), 30)
    with serve(aws_endpoint=shared_aws, stack_name=stack) as second:
        current["url"] = second.ws_url
        # alice is back first and talks before the others return
        await clients[0].ensure_open()
        for i in range(4):
            acked[(await clients[0].say("general", f"after {i}"))["id"]] = "general"
        for client in clients[1:]:
            await client.ensure_open()  # re-joins with `since` = the last id it showed
        for i in range(2):
            acked[(await clients[2].say("general", f"back {i}"))["id"]] = "general"
        # THEN each shows every message once, in order; nothing of the first emulator's connections is left
        missing = {c.user: await c.wait_for_all(acked, 60) for c in clients}
        assert all(not m for m in missing.values()), missing
        assert all(not c.order_violations for c in clients)
        assert all(c.closes.get(1001) for c in clients)
        left = {
            i["PK"]["S"][5:] for i in second.table_items("StateTable") if i["PK"]["S"].startswith("CONN#")
        }
        assert not (left & old_ids)
        report(
            "restart",
            clients=len(clients),
            acked=len(acked),
            missing=0,
            raw_duplicates=sum(c.raw_duplicates for c in clients),
            reconnects=sum(c.reconnects for c in clients),
        )
        for client in clients:
            await client.close()
