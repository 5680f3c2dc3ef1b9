"""The emulator's own exceptions: one base, so callers (and the CLI) can tell them from bugs."""

from __future__ import annotations

from pathlib import Path


class EmulatorError(Exception):
    """Base of every error the emulator raises on purpose; its message is meant for a person."""


class ConfigError(EmulatorError, ValueError):
    """A setting is invalid; the message names the option and what is wrong."""


class TemplateError(EmulatorError):
    """Something in the template the emulator cannot load or emulate."""

    def __init__(self, logical_id: str, message: str, path: Path | None = None) -> None:
        self.logical_id = logical_id
        self.message = message
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{logical_id}: {message}")


class ConnectionGoneError(EmulatorError):
    """The connection is unknown or closed (410 GoneException)."""


class ClientThrottledError(EmulatorError):
    """The client is not reading fast enough (429 LimitExceededException)."""
