"""Function workers, as real processes: isolation, warm reuse, timeouts, errors, concurrency, context."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.template.loader import load_template
from ws_emulator.template.specs import Template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "app" / "template.yaml"


@pytest.fixture
def template() -> Template:
    return load_template(FIXTURE)


@pytest.fixture
async def runtime(template: Template) -> AsyncIterator[FunctionRuntime]:
    api = template.websocket_apis[0]
    remote = f"https://{api.api_id}.execute-api.us-east-1.amazonaws.com/{api.stage}"
    rt = FunctionRuntime(
        template,
        env_overrides={"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "EXTRA": "x"},
        url_rewrites={remote: "http://127.0.0.1:9999/dev"},
        log=logging.getLogger("test.runtime"),
    )
    await rt.start()
    yield rt
    await rt.stop()


async def test_functions_with_same_module_names_are_isolated(runtime: FunctionRuntime) -> None:
    # GIVEN two functions that both ship a module called `util` with different values
    # WHEN both are invoked
    alpha = await runtime.invoke("AlphaFunction", {"n": 1})
    beta = await runtime.invoke("BetaFunction", {})
    # THEN each sees its own module, its own globals and its own environment
    assert alpha.ok and beta.ok, (alpha.error, beta.error)
    assert alpha.payload["util"] == "alpha-util"
    assert alpha.payload["layer"] == "from-layer"
    assert alpha.payload["event"] == {"n": 1}
    assert beta.payload["util"] == "beta-util"
    assert (alpha.payload["calls"], beta.payload["calls"]) == (1, 1)
    assert alpha.payload["pid"] != beta.payload["pid"]
    assert beta.payload["alpha_seen"] is False


async def test_second_invoke_is_warm_and_keeps_module_state(runtime: FunctionRuntime) -> None:
    first = await runtime.invoke("AlphaFunction", {})
    second = await runtime.invoke("AlphaFunction", {})
    assert first.cold_start and not second.cold_start
    assert second.payload["pid"] == first.payload["pid"]
    assert second.payload["calls"] == 2
    assert second.request_id != first.request_id
    assert runtime.pool_stats("AlphaFunction")["cold_starts"] == 1
    assert second.max_memory_mb is not None and 5 < second.max_memory_mb < 256  # Lambda's "Max Memory Used"


async def test_timeout_kills_worker_and_next_invoke_is_cold(runtime: FunctionRuntime) -> None:
    # GIVEN a function with Timeout 1
    # WHEN it runs longer
    result = await runtime.invoke("ToolsFunction", {"what": "sleep", "seconds": 3})
    # THEN the invoke fails like Lambda and the environment is discarded
    assert not result.ok
    assert result.error is not None
    assert "Task timed out after 1.00 seconds" in result.error["errorMessage"]
    assert result.duration_ms < 2500
    after = await runtime.invoke("ToolsFunction", {})
    assert after.ok and after.cold_start


async def test_handler_exception_is_reported_like_lambda(runtime: FunctionRuntime) -> None:
    result = await runtime.invoke("BetaFunction", {"fail": "boom"})
    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == "CustomError"
    assert result.error["errorMessage"] == "boom"
    assert any("app.py" in frame for frame in result.error["stackTrace"])
    # the environment survives a handler exception (warm afterwards)
    again = await runtime.invoke("BetaFunction", {})
    assert again.ok and not again.cold_start


async def test_unserializable_result_and_exit_are_errors(runtime: FunctionRuntime) -> None:
    marshal = await runtime.invoke("ToolsFunction", {"what": "unserializable"})
    assert marshal.error is not None and marshal.error["errorType"] == "Runtime.MarshalError"
    exited = await runtime.invoke("ToolsFunction", {"what": "exit"})
    assert exited.error is not None and exited.error["errorType"] == "Runtime.ExitError"
    assert (await runtime.invoke("ToolsFunction", {})).cold_start


async def test_decimals_are_returned_as_numbers_like_the_aws_runtime(runtime: FunctionRuntime) -> None:
    result = await runtime.invoke("ToolsFunction", {"what": "decimal"})
    assert result.payload == {"int": 3, "float": 1.5}


async def test_handler_reading_stdin_cannot_disturb_the_protocol(runtime: FunctionRuntime) -> None:
    result = await runtime.invoke("ToolsFunction", {"what": "stdin"})
    assert result.payload == {"stdin": ""}
    assert (await runtime.invoke("ToolsFunction", {})).ok


async def test_oversized_response_is_an_error(runtime: FunctionRuntime) -> None:
    result = await runtime.invoke("ToolsFunction", {"what": "big"})
    assert result.error is not None and result.error["errorType"] == "Function.ResponseSizeTooLarge"
    assert (await runtime.invoke("ToolsFunction", {})).ok


BROKEN = """\
Resources:
  Missing:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}
  NoHandler:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: ok.nothing, Runtime: python3.11}
  Crashes:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: crash.handler, Runtime: python3.11}
"""


@pytest.mark.parametrize(
    ("function_id", "error_type", "message"),
    [
        (
            "Missing",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'not_installed'",
        ),
        ("NoHandler", "Runtime.HandlerNotFound", "Handler 'nothing' missing on module 'ok'"),
        ("Crashes", "KeyError", "'REQUIRED_SETTING'"),
    ],
)
async def test_init_failures_are_reported_like_lambda(
    tmp_path: Path, function_id: str, error_type: str, message: str
) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("import not_installed\n", encoding="utf-8")
    (code / "ok.py").write_text("x = 1\n", encoding="utf-8")
    (code / "crash.py").write_text("import os\nSETTING = os.environ['REQUIRED_SETTING']\n", encoding="utf-8")
    (tmp_path / "template.yaml").write_text(BROKEN, encoding="utf-8")
    rt = FunctionRuntime(load_template(tmp_path / "template.yaml"), env_overrides={}, url_rewrites={})
    await rt.start()
    try:
        result = await rt.invoke(function_id, {})
        assert not result.ok
        assert result.error is not None
        assert (result.error["errorType"], result.error["errorMessage"]) == (error_type, message)
        assert rt.pool_stats(function_id)["workers"] == 0  # a failed init leaves no environment behind
    finally:
        await rt.stop()


async def test_reserved_concurrency_bounds_workers(runtime: FunctionRuntime) -> None:
    # GIVEN BetaFunction with ReservedConcurrentExecutions 2
    # WHEN five slow invokes arrive together
    started = time.perf_counter()
    results = await asyncio.gather(*(runtime.invoke("BetaFunction", {"sleep": 0.4}) for _ in range(5)))
    elapsed = time.perf_counter() - started
    # THEN at most two environments exist and the extra invokes waited
    assert all(r.ok for r in results)
    assert len({r.payload["pid"] for r in results}) == 2
    assert runtime.pool_stats("BetaFunction")["workers"] == 2
    assert elapsed >= 1.2


async def test_invoke_does_not_block_the_event_loop(runtime: FunctionRuntime) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.02)

    task = asyncio.create_task(ticker())
    await runtime.invoke("BetaFunction", {"sleep": 0.5})
    task.cancel()
    assert ticks >= 15


async def test_environment_context_and_paths(runtime: FunctionRuntime, template: Template) -> None:
    result = await runtime.invoke("ToolsFunction", {"what": "env"})
    assert result.ok, result.error
    env = result.payload["env"]
    spec = template.functions["ToolsFunction"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "local-ToolsFunction"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_SAM_LOCAL"] == "true"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["EXTRA"] == "x"
    assert env["LAMBDA_TASK_ROOT"] == str(spec.code_dir)
    assert env["ENDPOINT"] == "http://127.0.0.1:9999/dev"  # the API's AWS URL, rewritten
    assert env["ITEMS_TABLE"] == "local-ItemsTable"
    assert "ONLY_ALPHA" not in env
    assert "PYTEST_CURRENT_TEST" not in env  # nothing leaks from the emulator's own environment
    assert result.payload["cwd"] == str(spec.code_dir)
    sys_path = result.payload["sys_path"]
    assert sys_path[:2] == [str(spec.code_dir), str(spec.layers[0].path)]
    assert not any(p.endswith("ws_emulator") for p in sys_path)
    ctx = result.payload["context"]
    assert ctx["function_name"] == "local-ToolsFunction"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:local-ToolsFunction"
    assert ctx["aws_request_id"] == result.request_id
    assert ctx["log_group_name"] == "/aws/lambda/local-ToolsFunction"
    assert 0 < ctx["remaining"] <= 1000


async def test_worker_output_is_logged_with_function_prefix(
    runtime: FunctionRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test.runtime")
    await runtime.invoke("ToolsFunction", {"what": "stderr"})
    await asyncio.sleep(0.1)  # the log pump runs beside the invoke
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("[ToolsFunction] tools invoked {") for line in lines), lines
    assert "[ToolsFunction] to stderr" in lines


async def test_stop_leaves_no_worker_behind_and_refuses_new_invokes(template: Template) -> None:
    rt = FunctionRuntime(template, env_overrides={}, url_rewrites={})
    await rt.start()
    warm = await rt.invoke("AlphaFunction", {})
    slow = asyncio.create_task(rt.invoke("BetaFunction", {"sleep": 1}))
    starting = asyncio.create_task(rt.invoke("ToolsFunction", {}))
    await asyncio.sleep(0.01)
    await rt.stop()
    results = await asyncio.gather(slow, starting)
    assert all(not r.ok for r in results)
    after = await rt.invoke("AlphaFunction", {})
    assert after.error is not None and "stopped" in after.error["errorMessage"]
    await asyncio.sleep(0.1)
    assert not Path(f"/proc/{warm.payload['pid']}").exists()
    assert rt.pool_stats("BetaFunction")["workers"] == 0
    assert rt.pool_stats("ToolsFunction")["workers"] == 0


async def test_idle_environments_beyond_keep_warm_are_reclaimed(template: Template) -> None:
    # GIVEN a burst that opened two environments of one function
    rt = FunctionRuntime(template, env_overrides={}, url_rewrites={}, idle_ttl_s=0.2, keep_warm=1)
    await rt.start()
    try:
        await asyncio.gather(*(rt.invoke("BetaFunction", {"sleep": 0.2}) for _ in range(2)))
        assert rt.pool_stats("BetaFunction")["workers"] == 2
        # WHEN they stay idle past the TTL
        await asyncio.sleep(0.6)
        # THEN one is ended and one stays warm
        assert rt.pool_stats("BetaFunction")["workers"] == 1
        assert not (await rt.invoke("BetaFunction", {})).cold_start
    finally:
        await rt.stop()


async def test_plain_logging_is_formatted_like_the_aws_runtime(
    runtime: FunctionRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test.runtime")
    result = await runtime.invoke("BetaFunction", {"warn": "careful"})
    await asyncio.sleep(0.1)
    (record,) = [r for r in caplog.records if "plain logging" in r.getMessage()]
    assert record.getMessage() == "[BetaFunction] plain logging: careful"
    assert record.levelno == logging.WARNING
    assert result.ok
