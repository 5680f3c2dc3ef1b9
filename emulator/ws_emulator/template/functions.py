"""Functions and their triggers: code, layers, environment, SAM `Events`, event source mappings, rules."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ws_emulator.sources.filters import FilterError, validate_pattern
from ws_emulator.template.context import (
    FUNCTION_ARN,
    RULE,
    TemplateContext,
    to_env_str,
    truthy,
)
from ws_emulator.template.intrinsics import IntrinsicError
from ws_emulator.template.specs import (
    FunctionSpec,
    LayerSpec,
    ScheduleSpec,
    SqsSourceSpec,
    StreamSourceSpec,
)

_UNSUPPORTED_STREAM_PROPS = {
    "ParallelizationFactor": "one batch in flight per shard",
    "TumblingWindowInSeconds": "no window state is passed",
    "StartingPositionTimestamp": "AT_TIMESTAMP starts at LATEST",
    "MetricsConfig": "no event source mapping metrics",
}
_UNSUPPORTED_SQS_PROPS = {
    "MetricsConfig": "no event source mapping metrics",
}


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def merge_globals(global_props: Any, local_props: Any) -> Any:
    """SAM's Globals merge: maps merge (resource wins), lists concatenate, scalars are overridden."""
    if isinstance(global_props, dict) and isinstance(local_props, dict):
        if _is_intrinsic(global_props) or _is_intrinsic(local_props):
            return copy.deepcopy(local_props)
        merged = copy.deepcopy(global_props)
        for key, value in local_props.items():
            merged[key] = merge_globals(global_props[key], value) if key in global_props else value
        return merged
    if isinstance(global_props, list) and isinstance(local_props, list):
        return [*copy.deepcopy(global_props), *local_props]
    return copy.deepcopy(local_props)


class FunctionParts(TemplateContext):
    """Builds FunctionSpecs with their stream, SQS and schedule sources."""

    def _function(
        self, lid: str, globals_fn: dict[str, Any], layers: dict[str, LayerSpec], ignored: list[str]
    ) -> FunctionSpec:
        raw_props = self.resources[lid].get("Properties") or {}
        merged = merge_globals(globals_fn, raw_props)
        events = merged.pop("Events", None) or {}
        props = self.resolve(lid, merged)
        code_dir, handler, runtime = self._code(lid, props)
        fn_layers: list[LayerSpec] = []
        layer_arns = {self.physical(layer_id)["Ref"]: spec for layer_id, spec in layers.items()}
        for item in props.get("Layers") or []:
            if item in layer_arns:
                fn_layers.append(layer_arns[item])
            else:
                self.warnings.append(
                    f"{lid}: layer {item} is not a LayerVersion of this template; its packages must "
                    "be installed in the emulator's environment"
                )
        reserved = props.get("ReservedConcurrentExecutions")
        phys = self.physical(lid)
        spec = FunctionSpec(
            logical_id=lid,
            name=phys["Ref"],
            code_dir=code_dir,
            handler=handler,
            runtime=runtime,
            timeout_s=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment=self._environment(lid, props),
            layers=fn_layers,
            stream_sources=[],
            sqs_sources=[],
            schedules=[],
            reserved_concurrency=int(reserved) if reserved is not None else None,
            arn=phys["Arn"],
        )
        return self._with_events(spec, events, ignored)

    def _code(self, lid: str, props: dict[str, Any]) -> tuple[Path, str, str]:
        if props.get("PackageType") == "Image":
            raise self.error(lid, "PackageType Image is not supported (zip functions only)")
        if "InlineCode" in props:
            raise self.error(lid, "InlineCode is not supported: use CodeUri with a directory")
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str):
            raise self.error(lid, "CodeUri must be a local directory path")
        code_dir = (self.base_dir / code_uri).resolve()
        if not code_dir.is_dir():
            raise self.error(lid, f"CodeUri {code_uri!r} is not a directory ({code_dir})")
        handler = props.get("Handler")
        if not isinstance(handler, str) or "." not in handler:
            raise self.error(lid, f"Handler must look like module.function, got {handler!r}")
        runtime = str(props.get("Runtime", ""))
        if not runtime.startswith("python3"):
            raise self.error(lid, f"Runtime {runtime!r} is not supported (python3.x only)")
        return code_dir, handler, runtime

    def _environment(self, lid: str, props: dict[str, Any]) -> dict[str, str]:
        env_vars = (props.get("Environment") or {}).get("Variables") or {}
        try:
            environment = {str(k): to_env_str(v) for k, v in env_vars.items()}
        except IntrinsicError as exc:
            raise self.error(lid, str(exc)) from exc
        for key, value in environment.items():
            if "{{resolve:" in value:
                self.warnings.append(f"{lid}: {key} holds a dynamic reference, passed on unresolved")
        return environment

    def _with_events(self, spec: FunctionSpec, events: dict[str, Any], ignored: list[str]) -> FunctionSpec:
        """The function with the triggers of its SAM `Events` (other event types are listed as ignored)."""
        for event_id, event in events.items():
            where = f"{spec.logical_id}.Events.{event_id}"
            etype = str((event or {}).get("Type"))
            props = self.resolve(where, (event or {}).get("Properties") or {})
            enabled = truthy(props.get("Enabled"), True)
            if etype == "DynamoDB":
                if enabled:
                    spec = replace(
                        spec,
                        stream_sources=[*spec.stream_sources, self._stream_source(where, event_id, props)],
                    )
            elif etype == "SQS":
                if enabled:
                    spec = replace(
                        spec, sqs_sources=[*spec.sqs_sources, self._sqs_source(where, event_id, props)]
                    )
            elif etype in ("Schedule", "ScheduleV2"):
                spec = replace(
                    spec, schedules=[*spec.schedules, self._schedule(where, event_id, etype, props)]
                )
            else:
                ignored.append(f"{where} ({etype} event)")
        return spec

    def _stream_source(self, where: str, event_id: str, props: dict[str, Any]) -> StreamSourceSpec:
        stream = props.get("Stream")
        table_id = self._table_by_stream_arn(str(stream)) if stream else None
        if table_id is None:
            raise self.error(where, f"Stream {stream!r} is not the stream of a table in this template")
        table_props = self.resources[table_id].get("Properties") or {}
        if not table_props.get("StreamSpecification"):
            raise self.error(where, f"table {table_id} has no StreamSpecification")
        self._warn_unsupported(where, props, _UNSUPPORTED_STREAM_PROPS)
        filters = self._filters(where, props)
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        on_failure_id = None
        if on_failure and ":sns:" in str(on_failure):
            self.warnings.append(f"{where}: SNS on-failure destinations are not emulated (only logged)")
        elif on_failure:
            on_failure_id = self._queue_by_arn(str(on_failure))
            if on_failure_id is None:
                raise self.error(
                    where, f"OnFailure destination {on_failure} is not an SQS queue of this template"
                )
        response_types = props.get("FunctionResponseTypes") or []
        return StreamSourceSpec(
            table_id=table_id,
            batch_size=int(props.get("BatchSize", 100)),
            batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            filters=filters,
            report_batch_item_failures="ReportBatchItemFailures" in response_types,
            bisect_on_error=truthy(props.get("BisectBatchOnFunctionError"), False),
            max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            max_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
            on_failure_queue_id=on_failure_id,
            starting_position=str(props.get("StartingPosition", "LATEST")),
            event_id=event_id,
        )

    def _filters(self, where: str, props: dict[str, Any]) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = []
        for flt in (props.get("FilterCriteria") or {}).get("Filters") or []:
            pattern = flt.get("Pattern")
            try:
                parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
            except json.JSONDecodeError as exc:
                raise self.error(where, f"FilterCriteria pattern is not JSON: {exc}") from exc
            try:
                validate_pattern(parsed)
            except FilterError as exc:
                raise self.error(where, f"FilterCriteria pattern rejected: {exc}") from exc
            filters.append(parsed)
        if len(filters) > 5:
            self.warnings.append(f"{where}: {len(filters)} filters; AWS allows 5 unless the quota is raised")
        return filters

    def _warn_unsupported(self, where: str, props: dict[str, Any], unsupported: Mapping[str, str]) -> None:
        for key, effect in unsupported.items():
            if props.get(key) not in (None, False, [], {}):
                self.warnings.append(f"{where}: {key} is not emulated ({effect})")

    def _sqs_source(self, where: str, event_id: str, props: dict[str, Any]) -> SqsSourceSpec:
        queue = props.get("Queue")
        queue_id = self._queue_by_arn(str(queue)) if queue else None
        if queue_id is None:
            raise self.error(where, f"Queue {queue!r} is not the ARN of a queue in this template")
        self._warn_unsupported(where, props, _UNSUPPORTED_SQS_PROPS)
        scaling = props.get("ScalingConfig") or {}
        return SqsSourceSpec(
            queue_id=queue_id,
            batch_size=int(props.get("BatchSize", 10)),
            batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (props.get("FunctionResponseTypes") or []),
            event_id=event_id,
            max_concurrency=int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None,
            filters=self._filters(where, props),
        )

    def _schedule(self, where: str, event_id: str, etype: str, props: dict[str, Any]) -> ScheduleSpec:
        expression = props.get("Schedule" if etype == "Schedule" else "ScheduleExpression")
        if not isinstance(expression, str):
            raise self.error(where, "schedule expression missing")
        enabled = (
            truthy(props.get("Enabled"), True) and str(props.get("State", "ENABLED")).upper() != "DISABLED"
        )
        payload = props.get("Input")
        if payload is not None and not isinstance(payload, str):
            payload = json.dumps(payload)
        return ScheduleSpec(expression=expression, enabled=enabled, input=payload, event_id=event_id)

    def _function_by_ref(self, where: str, value: Any, functions: dict[str, FunctionSpec]) -> str:
        """A function of this template named by name, ARN (possibly qualified) or logical id."""
        text = str(value or "")
        match = FUNCTION_ARN.search(text)
        name = match.group(1) if match else text
        for fid, spec in functions.items():
            if name in (spec.name, fid):
                return fid
        raise self.error(where, f"{text!r} is not a function of this template")

    def _event_source_mapping(self, lid: str, functions: dict[str, FunctionSpec]) -> None:
        """A plain CloudFormation event source mapping: the same as the SAM event it expands from."""
        props = self._props(lid)
        fid = self._function_by_ref(lid, props.get("FunctionName"), functions)
        spec = functions[fid]
        arn = str(props.get("EventSourceArn") or "")
        if not truthy(props.get("Enabled"), True):
            return
        if ":dynamodb:" in arn:
            source = self._stream_source(lid, lid, props | {"Stream": arn})
            functions[fid] = replace(spec, stream_sources=[*spec.stream_sources, source])
        elif ":sqs:" in arn:
            sqs = self._sqs_source(lid, lid, props | {"Queue": arn})
            functions[fid] = replace(spec, sqs_sources=[*spec.sqs_sources, sqs])
        else:
            raise self.error(
                lid, f"EventSourceArn {arn!r}: only DynamoDB streams and SQS queues are emulated"
            )

    def _events_rule(self, lid: str, functions: dict[str, FunctionSpec], ignored: list[str]) -> None:
        """An EventBridge rule with a ScheduleExpression targeting functions of this template."""
        props = self._props(lid)
        expression = props.get("ScheduleExpression")
        if not expression:
            ignored.append(f"{lid} ({RULE} without ScheduleExpression)")
            return
        enabled = str(props.get("State", "ENABLED")).upper() == "ENABLED"
        for target in props.get("Targets") or []:
            arn = str(target.get("Arn", ""))
            if not FUNCTION_ARN.search(arn):
                ignored.append(f"{lid} target {target.get('Id')} (not a Lambda function)")
                continue
            fid = self._function_by_ref(lid, arn, functions)
            payload = target.get("Input")
            if payload is not None and not isinstance(payload, str):
                payload = json.dumps(payload)
            schedule = ScheduleSpec(expression=str(expression), enabled=enabled, input=payload, event_id=lid)
            spec = functions[fid]
            functions[fid] = replace(spec, schedules=[*spec.schedules, schedule])
