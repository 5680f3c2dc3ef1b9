"""Local emulator of API Gateway WebSocket APIs driven by a SAM template (`ws-emulator serve`)."""

__version__ = "0.1.0"
