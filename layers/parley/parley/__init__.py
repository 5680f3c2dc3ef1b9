"""Parley: the shared domain layer of the chat backend (importable from /opt/python on Lambda)."""

PROTOCOL_VERSION = 1
