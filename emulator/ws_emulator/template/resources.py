"""DynamoDB tables, SQS queues, EventBridge buses and layers as the emulator provisions and mounts them."""

from __future__ import annotations

import json
from typing import Any

from ws_emulator.template.context import SIMPLE_TABLE, TemplateContext, to_env_str, truthy
from ws_emulator.template.specs import EventBusSpec, LayerSpec, QueueSpec, TableSpec


class ResourceParts(TemplateContext):
    """Builds TableSpecs, QueueSpecs and LayerSpecs."""

    def _layer(self, lid: str) -> LayerSpec:
        props = self._props(lid)
        uri = props.get("ContentUri")
        if not isinstance(uri, str):
            raise self.error(lid, "ContentUri must be a local directory")
        path = (self.base_dir / uri).resolve()
        if not path.is_dir():
            raise self.error(lid, f"ContentUri {uri!r} is not a directory ({path})")
        # `sam build` copies ContentUri into python/; a hand-made layer already has python/.
        python_dir = path / "python"
        return LayerSpec(lid, python_dir if python_dir.is_dir() else path)

    def _table(self, lid: str, rtype: str) -> TableSpec:
        props = self._props(lid)
        name = self.physical(lid)["Ref"]
        if rtype == SIMPLE_TABLE:
            pk = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            attr_type = {"String": "S", "Number": "N", "Binary": "B"}.get(str(pk.get("Type")), "S")
            args: dict[str, Any] = {
                "TableName": name,
                "KeySchema": [{"AttributeName": pk["Name"], "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": pk["Name"], "AttributeType": attr_type}],
                "BillingMode": "PAY_PER_REQUEST",
            }
            return TableSpec(lid, name, args, None, False)
        for required in ("KeySchema", "AttributeDefinitions"):
            if required not in props:
                raise self.error(lid, f"table has no {required}")
        billing = props.get("BillingMode") or (
            "PROVISIONED" if "ProvisionedThroughput" in props else "PAY_PER_REQUEST"
        )
        args = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": billing,
        }
        if billing == "PROVISIONED":
            pt = props.get("ProvisionedThroughput") or {}
            args["ProvisionedThroughput"] = {
                "ReadCapacityUnits": int(pt.get("ReadCapacityUnits", 5)),
                "WriteCapacityUnits": int(pt.get("WriteCapacityUnits", 5)),
            }
        gsis = []
        for gsi in props.get("GlobalSecondaryIndexes") or []:
            index = {k: gsi[k] for k in ("IndexName", "KeySchema", "Projection") if k in gsi}
            if billing == "PROVISIONED":
                pt = gsi.get("ProvisionedThroughput") or {}
                index["ProvisionedThroughput"] = {
                    "ReadCapacityUnits": int(pt.get("ReadCapacityUnits", 5)),
                    "WriteCapacityUnits": int(pt.get("WriteCapacityUnits", 5)),
                }
            gsis.append(index)
        if gsis:
            args["GlobalSecondaryIndexes"] = gsis
        lsis = [
            {k: lsi[k] for k in ("IndexName", "KeySchema", "Projection") if k in lsi}
            for lsi in props.get("LocalSecondaryIndexes") or []
        ]
        if lsis:
            args["LocalSecondaryIndexes"] = lsis
        stream_spec = props.get("StreamSpecification")
        view_type = stream_spec.get("StreamViewType") if isinstance(stream_spec, dict) else None
        if view_type:
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
        ttl = props.get("TimeToLiveSpecification") or {}
        ttl_attr = ttl.get("AttributeName") if truthy(ttl.get("Enabled"), False) else None
        return TableSpec(lid, name, args, str(ttl_attr) if ttl_attr else None, bool(view_type))

    def _queue(self, lid: str) -> QueueSpec:
        props = self._props(lid)
        phys = self.physical(lid)
        attributes: dict[str, str] = {}
        for key in (
            "DelaySeconds",
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
        ):
            if key in props:
                attributes[key] = to_env_str(props[key])
        dlq_id = None
        redrive = props.get("RedrivePolicy")
        if redrive is not None:
            policy = json.loads(redrive) if isinstance(redrive, str) else dict(redrive)
            target = policy.get("deadLetterTargetArn")
            if not target or "maxReceiveCount" not in policy:
                raise self.error(lid, "RedrivePolicy needs deadLetterTargetArn and maxReceiveCount")
            dlq_id = self._queue_by_arn(str(target))
            if dlq_id is None:
                raise self.error(lid, f"RedrivePolicy target {target} is not a queue of this template")
            policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
            attributes["RedrivePolicy"] = json.dumps(policy)
        return QueueSpec(lid, phys["QueueName"], attributes, phys["Arn"], dlq_id)

    def _event_bus(self, lid: str) -> EventBusSpec:
        phys = self.physical(lid)
        if phys["Name"] == "default":
            raise self.error(
                lid, "an AWS::Events::EventBus cannot be named 'default' (the account's own bus)"
            )
        return EventBusSpec(lid, phys["Name"], phys["Arn"])
