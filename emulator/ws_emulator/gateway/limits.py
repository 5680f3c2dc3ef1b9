"""API Gateway WebSocket limits: sizes, idle and lifetime deadlines, the new-connection rate (pure)."""

from __future__ import annotations

from ws_emulator.gateway.closing import IDLE_TIMEOUT, MAX_DURATION, CloseCause

FRAME_LIMIT_BYTES = 32 * 1024
MESSAGE_LIMIT_BYTES = 128 * 1024
IDLE_TIMEOUT_S = 10 * 60.0
MAX_CONNECTION_DURATION_S = 2 * 60 * 60.0
CONNECT_RATE_PER_S = 500.0


def oversized_reply(reply: str | bytes, limit_bytes: int = MESSAGE_LIMIT_BYTES) -> str | None:
    """Why a route response cannot be sent (over the 128 KB message payload quota), or None.

    The quota applies to every message API Gateway sends, route responses included; AWS does not
    document what the client then gets, so the emulator sends nothing and says so on the event line.
    """
    size = len(reply.encode("utf-8")) if isinstance(reply, str) else len(reply)
    if size <= limit_bytes:
        return None
    return f"route response not sent: {size} bytes, over the {limit_bytes}-byte message limit"


def next_deadline(
    *, connected_at: float, last_active: float, idle_timeout_s: float, max_duration_s: float
) -> tuple[float, CloseCause]:
    """When the connection must close if nothing else happens, and why (the earlier of idle and lifetime)."""
    idle_at = last_active + idle_timeout_s
    end_of_life = connected_at + max_duration_s
    if end_of_life <= idle_at:
        return end_of_life, MAX_DURATION
    return idle_at, IDLE_TIMEOUT


class TokenBucket:
    """Token bucket for new connections: `rate` per second, up to `burst` at once; time is passed in."""

    def __init__(self, rate: float, burst: float | None = None, *, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self._tokens = self.burst
        self._updated = now

    def try_take(self, now: float) -> bool:
        """Take one token if available; False means the caller must answer 429."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
