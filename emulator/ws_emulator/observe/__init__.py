"""Observing the emulator: one record per invocation, event lines, and the live dashboard."""
