"""Run template functions as Lambda does: a pool of warm execution environments per function."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ws_emulator.runtime.environment import BOOTSTRAP, function_environment
from ws_emulator.runtime.logs import readable_log_line
from ws_emulator.runtime.worker import (
    PIPE_LIMIT,
    RESPONSE_LIMIT_BYTES,
    STOPPED_ERROR,
    ResponseTooLarge,
    Worker,
    WorkerDied,
    timeout_error,
)
from ws_emulator.template.specs import FunctionSpec, Template

DEFAULT_CONCURRENCY = 4
INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit, separate from the function Timeout


@dataclass(frozen=True)
class InvokeResult:
    ok: bool
    payload: Any  # handler return value (JSON-roundtripped) when ok
    error: dict[str, Any] | None  # {"errorType","errorMessage","stackTrace"} like Lambda
    duration_ms: float
    function_id: str
    request_id: str
    cold_start: bool = False
    init_ms: float = 0.0
    max_memory_mb: int | None = None  # peak RSS of the execution environment (Linux), as Lambda reports


@dataclass
class _Call:
    request_id: str
    cold: bool
    init_ms: float
    started: float
    max_memory_mb: int | None = None


class _FunctionPool:
    """Execution environments of one function, at most `cap` at a time; extra invokes wait."""

    def __init__(self, spec: FunctionSpec, env_factory: Any, cap: int, log: logging.Logger) -> None:
        self.spec = spec
        self._env_factory = env_factory
        self.cap = cap
        self._sem = asyncio.Semaphore(cap)
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._log = log
        self.cold_starts = 0
        self.closed = False
        # Bumped when the function's code, layers or spec change: older workers are not reused.
        self.generation = 0

    @property
    def meta(self) -> dict[str, Any]:
        return {
            "function_name": self.spec.name,
            "function_arn": self.spec.arn,
            "memory_mb": self.spec.memory_mb,
        }

    async def _spawn(self) -> tuple[Worker | None, dict[str, Any] | None]:
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"
        env = self._env_factory(self.spec, stream)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # no PYTHONPATH, no user site, no script dir: the handler sees only its own path
            "-u",
            str(BOOTSTRAP),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(self.spec.code_dir),
            env={"PATH": env["PATH"], "LANG": env["LANG"]},
            limit=PIPE_LIMIT,
        )
        worker = Worker(proc, asyncio.create_task(self._pump(proc)), generation=self.generation)
        if self.closed:
            await worker.kill()
            return None, STOPPED_ERROR
        # Between here and `ready` the worker is in no list; stop() must still find it.
        self._busy.add(worker)
        try:
            return await self._initialise(worker, env, stream)
        except asyncio.CancelledError:
            await asyncio.shield(worker.kill())
            raise
        finally:
            self._busy.discard(worker)

    async def _initialise(
        self, worker: Worker, env: dict[str, str], stream: str
    ) -> tuple[Worker | None, dict[str, Any] | None]:
        self.cold_starts += 1
        init = {
            "env": env,
            "code_dir": str(self.spec.code_dir),
            "layer_dirs": [str(layer.path) for layer in self.spec.layers],
            "handler": self.spec.handler,
            "meta": self.meta
            | {"log_group_name": f"/aws/lambda/{self.spec.name}", "log_stream_name": stream},
        }
        try:
            reply = await asyncio.wait_for(worker.request(init), timeout=INIT_TIMEOUT_S)
        except TimeoutError:
            await worker.kill()
            return None, {
                "errorType": "Runtime.InitTimeout",
                "errorMessage": f"Init phase did not finish in {INIT_TIMEOUT_S:.0f} seconds",
                "stackTrace": [],
            }
        except WorkerDied as exc:
            await worker.kill()
            return None, {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Runtime exited during init with exit status {exc.returncode}",
                "stackTrace": [],
            }
        if reply.get("type") != "ready":
            await worker.kill()
            return None, dict(
                reply.get("error") or {"errorType": "Runtime.Unknown", "errorMessage": str(reply)}
            )
        return worker, None

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        prefix = self.spec.logical_id
        while True:
            line = await proc.stderr.readline()
            if not line:
                return
            raw = line.decode("utf-8", "replace").rstrip()
            level, text = readable_log_line(raw)
            # At DEBUG the emulator shows function output verbatim (every Powertools field).
            self._log.log(level, "[%s] %s", prefix, raw if self._log.isEnabledFor(logging.DEBUG) else text)

    async def invoke(self, event: dict[str, Any]) -> InvokeResult:
        request_id = str(uuid.uuid4())
        async with self._sem:
            if self.closed:
                return self._result(
                    _Call(request_id, False, 0.0, time.perf_counter()), False, None, STOPPED_ERROR
                )
            started = time.perf_counter()
            await self._drop_stale_idle()
            cold = not self._idle
            if self._idle:
                worker: Worker | None = self._idle.pop()
                init_ms, init_error = 0.0, None
            else:
                worker, init_error = await self._spawn()
                init_ms = (time.perf_counter() - started) * 1000
            call = _Call(request_id, cold, init_ms, time.perf_counter())
            if worker is None:
                assert init_error is not None
                return self._result(call, False, None, init_error)
            self._busy.add(worker)
            try:
                reply, error = await self._run(worker, call, event)
            finally:
                self._busy.discard(worker)
            if error is None and reply is not None:
                # Read before the environment can be reused: Lambda reports it per invocation.
                call.max_memory_mb = worker.peak_rss_mb()
                worker.invocations += 1
                worker.last_used = time.monotonic()
                if self.closed or worker.generation != self.generation:
                    # stop() ran during the invoke, or the code changed: nobody will reuse it
                    await worker.kill()
                else:
                    self._idle.append(worker)
                if reply.get("ok"):
                    return self._result(call, True, reply.get("payload"), None)
                error = reply.get("error") or {"errorType": "Runtime.Unknown", "errorMessage": str(reply)}
            return self._result(call, False, None, error)

    async def _run(
        self, worker: Worker, call: _Call, event: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(reply, None) when the worker answered and can be reused, else (None, error) and it is gone."""
        deadline_ms = int(time.time() * 1000 + self.spec.timeout_s * 1000)
        msg = {"request_id": call.request_id, "event": event, "deadline_ms": deadline_ms}
        try:
            return await asyncio.wait_for(worker.request(msg), timeout=self.spec.timeout_s), None
        except TimeoutError:
            # Lambda throws the environment away after a timeout: the next invoke is a cold start.
            error = timeout_error(call.request_id, self.spec.timeout_s)
            self._log.warning("[%s] %s", self.spec.logical_id, error["errorMessage"])
        except WorkerDied as exc:
            error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {call.request_id} Error: Runtime exited with error: "
                f"exit status {exc.returncode}",
                "stackTrace": [],
            }
        except ResponseTooLarge as exc:
            # The rest of the oversized reply is still in the pipe: this worker cannot be reused.
            error = {
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size ({exc.size} bytes) exceeded maximum allowed "
                f"payload size ({RESPONSE_LIMIT_BYTES} bytes).",
                "stackTrace": [],
            }
        except asyncio.CancelledError:
            # The caller gave up mid-invoke; the worker's state is unknown, so it is not reused.
            await asyncio.shield(worker.kill())
            raise
        await worker.kill()
        return None, error

    def _result(self, call: _Call, ok: bool, payload: Any, error: dict[str, Any] | None) -> InvokeResult:
        duration_ms = (time.perf_counter() - call.started) * 1000
        init = f" Init Duration: {call.init_ms:.2f} ms" if call.cold else ""
        memory = f" Memory Size: {self.spec.memory_mb} MB Max Memory Used: {call.max_memory_mb} MB"
        self._log.debug(
            "[%s] REPORT RequestId: %s Duration: %.2f ms%s%s",
            self.spec.logical_id,
            call.request_id,
            duration_ms,
            memory if call.max_memory_mb is not None else "",
            init,
        )
        if call.max_memory_mb is not None and call.max_memory_mb > self.spec.memory_mb:
            self._log.warning(
                "[%s] used %d MB, over its MemorySize of %d MB: Lambda would end it (Runtime.OutOfMemory)",
                self.spec.logical_id,
                call.max_memory_mb,
                self.spec.memory_mb,
            )
        return InvokeResult(
            ok=ok,
            payload=payload,
            error=error,
            duration_ms=duration_ms,
            function_id=self.spec.logical_id,
            request_id=call.request_id,
            cold_start=call.cold,
            init_ms=call.init_ms,
            max_memory_mb=call.max_memory_mb,
        )

    def recycle(self, spec: FunctionSpec | None = None) -> None:
        """New code (or a new spec): the next invoke starts a fresh worker; busy ones finish first."""
        if spec is not None:
            self.spec = spec
        self.generation += 1

    async def _drop_stale_idle(self) -> None:
        stale = [w for w in self._idle if w.generation != self.generation]
        if not stale:
            return
        self._idle = [w for w in self._idle if w.generation == self.generation]
        await asyncio.gather(*(w.kill() for w in stale), return_exceptions=True)

    async def warm(self) -> dict[str, Any] | None:
        """Start one execution environment now and keep it idle (its init error, if it has one)."""
        async with self._sem:
            if self.closed or self._idle:
                return None
            worker, error = await self._spawn()
            if worker is None:
                return error
            if self.closed:
                await worker.kill()
            else:
                self._idle.append(worker)
            return None

    async def reap_idle(self, idle_ttl_s: float, keep_warm: int) -> int:
        """End environments idle for longer than `idle_ttl_s`, keeping the `keep_warm` most recent."""
        now = time.monotonic()
        # _idle is used as a stack: the most recently used environments are at its end.
        candidates = self._idle[: max(0, len(self._idle) - keep_warm)]
        expired = [w for w in candidates if now - w.last_used > idle_ttl_s]
        for worker in expired:
            self._idle.remove(worker)
        await asyncio.gather(*(w.kill() for w in expired), return_exceptions=True)
        return len(expired)

    @property
    def worker_count(self) -> int:
        return len(self._idle) + len(self._busy)

    async def stop(self) -> None:
        self.closed = True
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        await asyncio.gather(*(w.kill() for w in workers), return_exceptions=True)


class FunctionRuntime:
    """Invokes the template's functions in isolated worker processes, bounded per function.

    Each execution environment is a `python -I` child of the emulator's own interpreter: sys.path is
    CodeUri, the layers, then the emulator's standard library and site-packages. `requirements.txt`
    files of functions and layers are not installed: what they list must be installed where the
    emulator runs. Concurrency per function is ReservedConcurrentExecutions, else
    `default_concurrency`; extra invokes wait for a free environment.
    """

    def __init__(
        self,
        template: Template,
        *,
        env_overrides: Mapping[str, str],
        url_rewrites: Mapping[str, str],
        log: logging.Logger | None = None,
        default_concurrency: int = DEFAULT_CONCURRENCY,
        idle_ttl_s: float = 120.0,
        keep_warm: int = 1,
        function_env: Callable[[FunctionSpec], Mapping[str, str]] | None = None,
        observer: Callable[[str, dict[str, Any], InvokeResult], object] | None = None,
    ) -> None:
        self.template = template
        # Every invocation (routes, authorizer, streams, queues, schedules) passes here: one place to observe.
        self.observer = observer
        self._env_overrides = dict(env_overrides)
        # Per-function additions over env_overrides (each function's own credentials).
        self._function_env = function_env
        self._url_rewrites = dict(url_rewrites)
        self._log = log or logging.getLogger("ws_emulator.runtime")
        self._default_concurrency = default_concurrency
        self._pools: dict[str, _FunctionPool] = {}
        # Lambda reclaims idle environments; here a burst's extra workers (~70 MB each with boto3
        # and Powertools) go after `idle_ttl_s`, and `keep_warm` per function stay to spare cold starts.
        self.idle_ttl_s = idle_ttl_s
        self.keep_warm = keep_warm
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[None]] = set()

    def environment(self, function_id: str, log_stream_name: str = "local") -> dict[str, str]:
        """The environment a worker of `function_id` gets (for diagnostics and tests)."""
        spec = self.template.functions[function_id]
        return function_environment(
            spec, self.template, self._overrides(spec), self._url_rewrites, log_stream_name
        )

    def _overrides(self, spec: FunctionSpec) -> dict[str, str]:
        extra = self._function_env(spec) if self._function_env else {}
        return self._env_overrides | dict(extra)

    async def start(self) -> None:
        if self._pools:
            return
        for fid, spec in self.template.functions.items():
            self._pools[fid] = self._new_pool(spec)
        self._reaper = asyncio.create_task(self._reap_forever(), name="ws-emulator idle workers")

    def _new_pool(self, spec: FunctionSpec) -> _FunctionPool:
        reserved = spec.reserved_concurrency
        if reserved == 0:
            self._log.warning(
                "%s has ReservedConcurrentExecutions 0: AWS would throttle every invoke", spec.logical_id
            )
        cap = reserved if reserved else self._default_concurrency

        def env_factory(s: FunctionSpec, stream: str) -> dict[str, str]:
            return function_environment(s, self.template, self._overrides(s), self._url_rewrites, stream)

        return _FunctionPool(spec, env_factory, cap, self._log)

    async def warm(self) -> dict[str, dict[str, Any]]:
        """Initialise one environment per function now (`--warm`); returns the init errors by function.

        Like `sam local --warm-containers EAGER`: the first invoke of each function then finds a warm
        environment and reports no cold start. At most as many start at once as there are CPUs.
        """
        if not self._pools:
            await self.start()
        limit = asyncio.Semaphore(max(1, os.cpu_count() or 1))

        async def one(pool: _FunctionPool) -> tuple[str, dict[str, Any] | None]:
            async with limit:
                return pool.spec.logical_id, await pool.warm()

        results = await asyncio.gather(*(one(pool) for pool in self._pools.values()))
        return {fid: error for fid, error in results if error is not None}

    def recycle(self, function_ids: Iterable[str]) -> list[str]:
        """The code of these functions changed: each one's next invoke starts a fresh worker (lazily)."""
        recycled = []
        for fid in function_ids:
            pool = self._pools.get(fid)
            if pool is not None:
                pool.recycle()
                recycled.append(fid)
        return recycled

    def update_template(self, template: Template) -> list[str]:
        """Take a reloaded template in place: changed functions are recycled, new ones get a pool.

        Returns the functions whose spec changed or that are new. A removed function's warm workers
        are ended; invoking it afterwards raises KeyError, as for any unknown function.
        """
        changed = []
        old_specs = {fid: pool.spec for fid, pool in self._pools.items()}
        self.template = template
        if not self._pools:
            return list(template.functions)
        for fid, spec in template.functions.items():
            pool = self._pools.get(fid)
            if pool is None:
                self._pools[fid] = self._new_pool(spec)
                changed.append(fid)
            elif old_specs[fid] != spec:
                pool.recycle(spec)
                changed.append(fid)
        for fid in [fid for fid in self._pools if fid not in template.functions]:
            pool = self._pools.pop(fid)
            task = asyncio.ensure_future(pool.stop())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return changed

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(10.0, self.idle_ttl_s / 2))
        while True:
            await asyncio.sleep(interval)
            for pool in self._pools.values():
                ended = await pool.reap_idle(self.idle_ttl_s, self.keep_warm)
                if ended:
                    self._log.debug("[%s] ended %d idle environment(s)", pool.spec.logical_id, ended)

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await asyncio.gather(*(pool.stop() for pool in self._pools.values()), return_exceptions=True)

    def pool_stats(self, function_id: str) -> dict[str, int]:
        pool = self._pools[function_id]
        return {"workers": pool.worker_count, "cold_starts": pool.cold_starts, "cap": pool.cap}

    async def invoke(self, function_id: str, event: dict[str, Any]) -> InvokeResult:
        """Invoke `function_id` with `event`; handler failures come back as InvokeResult(ok=False)."""
        if not self._pools:
            await self.start()
        pool = self._pools.get(function_id)
        if pool is None:
            raise KeyError(f"unknown function {function_id!r}")
        result = await pool.invoke(event)
        if self.observer is not None:
            self.observer(function_id, event, result)
        return result
