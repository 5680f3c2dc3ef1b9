"""Derived templates: Parley's template.yaml with absolute paths, a swappable fan-out strategy and an
opt-in counting hook. Written at bench time under bench/.work/; template.yaml itself is never changed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
STRATEGIES = ("parley", "baseline")


def derive(strategy: str, *, counting_dir: Path | None = None) -> Path:
    """A copy of template.yaml that the emulator can serve from bench/.work/.

    strategy "baseline" points MessageFunction at bench/baseline (Scan + one post per connection);
    counting_dir wraps every handler with bench/hook/bench_hook.py, which counts AWS calls into it.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}")
    text = (ROOT / "template.yaml").read_text()
    text = re.sub(r"(CodeUri|ContentUri): (functions|layers)/", rf"\1: {ROOT}/\2/", text)
    if strategy == "baseline":
        text, n = re.subn(
            r"(  MessageFunction:\n(?:    .*\n|\n)*?      CodeUri: )\S+", rf"\g<1>{BENCH}/baseline/", text
        )
        assert n == 1, "MessageFunction.CodeUri not found"
    name = strategy
    if counting_dir is not None:
        counting_dir.mkdir(parents=True, exist_ok=True)
        text, n = re.subn(r"\n    Handler: app\.handler\n", "\n    Handler: bench_hook.handler\n", text)
        assert n == 1, "Globals Handler not found"
        text, n = re.subn(
            r"\n    Layers:\n      - !Ref ParleyLayer\n",
            "\n    Layers:\n      - !Ref ParleyLayer\n      - !Ref BenchHookLayer\n",
            text,
        )
        assert n == 1, "Globals Layers not found"
        text, n = re.subn(
            r"(\n        POWERTOOLS_LOGGER_LOG_EVENT: \"false\"\n)",
            rf'\1        BENCH_HANDLER: app.handler\n        BENCH_COUNTS_DIR: "{counting_dir}"\n',
            text,
        )
        assert n == 1, "Globals environment not found"
        text = text.replace(
            "\nResources:\n",
            f"\nResources:\n  BenchHookLayer:\n    Type: AWS::Serverless::LayerVersion\n"
            f"    Properties:\n      ContentUri: {BENCH}/hook/\n",
            1,
        )
        name += "-counting"
    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / f"template-{name}.yaml"
    out.write_text(text)
    return out


def template_default(parameter: str) -> float:
    """A numeric parameter's Default in template.yaml, so a scenario can run at what a deploy gets."""
    text = (ROOT / "template.yaml").read_text()
    found = re.search(rf"\n  {re.escape(parameter)}:\n(?:    .*\n)*?    Default: ([0-9.]+)\n", text)
    if found is None:
        raise ValueError(f"no numeric Default for parameter {parameter!r} in template.yaml")
    return float(found.group(1))
