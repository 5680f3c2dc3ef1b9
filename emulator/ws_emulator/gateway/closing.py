"""Why a connection ended, as `$disconnect` reports it: close codes, reasons, whose frame counts (pure)."""

from __future__ import annotations

from dataclasses import dataclass

# Close codes and the disconnectReason texts API Gateway reports for them.
GOING_AWAY = 1001
NORMAL_CLOSURE = 1000
MESSAGE_TOO_BIG = 1009
NO_STATUS = 1005
ABNORMAL = 1006
NO_STATUS_REASON = "Client-side close frame status not set"
GOING_AWAY_REASON = "Going away"


@dataclass(frozen=True)
class CloseCause:
    """Why a connection ended, as `$disconnect` reports it."""

    status_code: int
    reason: str


@dataclass(frozen=True)
class CloseFrame:
    """One close frame as the WebSocket protocol recorded it (sent or received)."""

    code: int
    reason: str


IDLE_TIMEOUT = CloseCause(GOING_AWAY, GOING_AWAY_REASON)
MAX_DURATION = CloseCause(GOING_AWAY, GOING_AWAY_REASON)
SERVER_SHUTDOWN = CloseCause(GOING_AWAY, GOING_AWAY_REASON)
DELETED = CloseCause(NORMAL_CLOSURE, "Connection closed by the management API")


def client_close_cause(code: int | None, reason: str | None) -> CloseCause:
    """The client's close: its code and reason; 1005 without a code, 1006 without a close frame."""
    if code is None or code == ABNORMAL:
        return CloseCause(ABNORMAL, "Connection closed abnormally")
    if code == NO_STATUS:
        return CloseCause(NO_STATUS, NO_STATUS_REASON)
    return CloseCause(code, reason or "")


def default_reason(code: int) -> str:
    """The reason API Gateway gives for a server-side close that carried none."""
    if code == GOING_AWAY:
        return GOING_AWAY_REASON
    if code == MESSAGE_TOO_BIG:
        return "Message too big"
    return ""


def close_cause(
    recorded: CloseCause | None,
    sent: CloseFrame | None,
    received: CloseFrame | None,
    *,
    received_then_sent: bool | None,
) -> CloseCause:
    """What `$disconnect` reports once the socket is closed.

    A cause the gateway recorded when it closed (idle timeout, maximum duration, DeleteConnection)
    wins. Otherwise, when the server spoke first (the frame parser's 1009, or server shutdown), its
    own close frame is the cause; when the client spoke first, the client's frame; and without any
    close frame the TCP connection dropped (1006).
    """
    if recorded is not None:
        return recorded
    if sent is not None and (received is None or not received_then_sent):
        return CloseCause(sent.code, sent.reason or default_reason(sent.code))
    return client_close_cause(
        received.code if received is not None else None, received.reason if received else None
    )
