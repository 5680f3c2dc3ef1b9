"""SAM's own transform (aws-sam-translator), run offline: the CloudFormation a SAM template expands to."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ws_emulator.errors import TemplateError

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
SERVERLESS_WEBSOCKET_API = "AWS::Serverless::WebSocketApi"
# SAM refuses local paths for code at this stage (`sam build`/`sam local` put S3 URIs there first);
# the emulator keeps reading the local paths from the SAM resources themselves.
_CODE_PROPS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


def uses_sam(raw: Mapping[str, Any]) -> bool:
    transform = raw.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in names


def expand(
    raw: Mapping[str, Any],
    parameter_values: Mapping[str, Any],
    *,
    region: str,
    account_id: str,
    stack_name: str,
    path: Path,
) -> dict[str, Any]:
    """The Resources of `raw` after SAM's transform (aws-sam-translator), with no AWS call.

    The managed-policy map is empty: SAM only needs it to turn policy *names* into ARNs, and an
    unknown name is kept as written, which the emulator reports at start-up.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.translator import Translator

    document = copy.deepcopy(dict(raw))
    _placeholder_code(document)
    # A session built here never calls AWS: the translator only reads its region.
    session = boto3.session.Session(
        region_name=region, aws_access_key_id="local", aws_secret_access_key="local"
    )
    values = {
        **parameter_values,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::StackName": stack_name,
        "AWS::Partition": "aws",
    }
    try:
        output = Translator(None, Parser(), boto_session=session).translate(
            document, parameter_values=values, get_managed_policy_map=dict
        )
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes) or str(exc)
        raise TemplateError("<template>", f"SAM transform failed: {causes}", path) from exc
    except Exception as exc:  # the translator raises plain errors for some documents
        raise TemplateError("<template>", f"SAM transform failed: {exc}", path) from exc
    resources = output.get("Resources")
    if not isinstance(resources, dict):
        raise TemplateError("<template>", "SAM transform produced no Resources", path)
    return resources


def _placeholder_code(document: dict[str, Any]) -> None:
    for lid, res in (document.get("Resources") or {}).items():
        if not isinstance(res, dict):
            continue
        prop = _CODE_PROPS.get(str(res.get("Type")))
        props = res.get("Properties")
        if prop and isinstance(props, dict) and isinstance(props.get(prop), str):
            props[prop] = f"s3://ws-emulator-local/{lid}"
    globals_fn = (document.get("Globals") or {}).get("Function")
    if isinstance(globals_fn, dict) and isinstance(globals_fn.get("CodeUri"), str):
        globals_fn["CodeUri"] = "s3://ws-emulator-local/globals"
