"""A function's output lines as the emulator logs them (pure part of the runtime)."""

import logging

import pytest

from ws_emulator.runtime.logs import readable_log_line


@pytest.mark.parametrize(
    ("line", "level", "text"),
    [
        ("plain print", logging.INFO, "plain print"),
        (
            '{"level":"INFO","location":"h:9","message":"joined","timestamp":"t","service":"s",'
            '"cold_start":true,"function_name":"f","function_request_id":"r","channel":"general"}',
            logging.INFO,
            'joined {"location": "h:9", "channel": "general"}',
        ),
        ('{"level":"DEBUG","message":"detail"}', logging.DEBUG, "detail"),
        (
            '{"level":"ERROR","message":"failed","exception":"Traceback...\\nKeyError: x"}',
            logging.ERROR,
            "failed\nTraceback...\nKeyError: x",
        ),
        (
            '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],'
            '"Metrics":[{"Name":"Posts","Unit":"Count"}]}]},"Posts":[2.0]}',
            logging.DEBUG,
            "metrics Posts=[2.0]",
        ),
        ('{"not": "a log record"}', logging.INFO, '{"not": "a log record"}'),
        ("[WARNING]\t2026-11-28T01:02:03.004Z\tabc-123\tdisk low", logging.WARNING, "disk low"),
        ("[ERROR] KeyError: 'x'", logging.INFO, "[ERROR] KeyError: 'x'"),
    ],
)
def test_readable_log_lines(line: str, level: int, text: str) -> None:
    assert readable_log_line(line) == (level, text)
