"""One base for the emulator's own errors, so the CLI can report them in one line."""

import pytest

from ws_emulator.errors import (
    ClientThrottledError,
    ConfigError,
    ConnectionGoneError,
    EmulatorError,
    TemplateError,
)
from ws_emulator.gateway.http11 import BadRequest
from ws_emulator.gateway.routing import RouteSelectionError
from ws_emulator.sources.filters import FilterError
from ws_emulator.sources.schedules import ScheduleError
from ws_emulator.template.intrinsics import IntrinsicError


@pytest.mark.parametrize(
    "error",
    [
        ConfigError,
        TemplateError,
        ConnectionGoneError,
        ClientThrottledError,
        BadRequest,
        RouteSelectionError,
        FilterError,
        ScheduleError,
        IntrinsicError,
    ],
)
def test_every_emulator_error_derives_from_the_one_base(error: type[Exception]) -> None:
    # GIVEN an error class the emulator raises on purpose
    # WHEN its ancestry is checked
    # THEN it is an EmulatorError
    assert issubclass(error, EmulatorError)


def test_value_errors_stay_value_errors() -> None:
    # GIVEN the errors that were ValueErrors before the common base existed
    # WHEN code catches ValueError
    # THEN it still catches them
    assert all(
        issubclass(e, ValueError) for e in (ConfigError, RouteSelectionError, FilterError, ScheduleError)
    )


def test_template_error_names_file_and_resource() -> None:
    # GIVEN a template problem
    error = TemplateError("Fn", "no CodeUri", None)
    # WHEN it is shown
    # THEN it names the resource and the problem
    assert str(error) == "Fn: no CodeUri" and (error.logical_id, error.message) == ("Fn", "no CodeUri")
