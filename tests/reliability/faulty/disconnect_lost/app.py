"""DisconnectFunction whose `$disconnect` never arrives (it is best effort on AWS): does nothing."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"statusCode": 200}
