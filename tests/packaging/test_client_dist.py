"""The parley-client distribution (clients/python/): its wheel's contents and metadata, the package
free of Parley's server code, and the wheel installed into a fresh virtualenv running the README's
bot against a fake Parley on 127.0.0.1.

The build and the install use pip's ordinary index and cache (the install pinned to
requirements-dev.txt's versions); PIP_NO_INDEX=1 and PIP_FIND_LINKS=DIR make both offline.
"""

from __future__ import annotations

import ast
import asyncio
import email.parser
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.fake_server import GOOD_TOKEN, fake_parley
from tests.packaging.test_emulator_dist import _clean_env, _run

ROOT = Path(__file__).parents[2]
CLIENT = ROOT / "clients" / "python"
PACKAGE = CLIENT / "parley_client"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "python"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, source, cwd=out)
    (built,) = out.glob("parley_client-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv (no system site-packages) holding the wheel and its dependency only."""
    where = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", where / "env", cwd=where)
    python = where / "env" / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-compile",
        "--constraint",
        ROOT / "requirements-dev.txt",
        wheel,
        cwd=where,
    )
    yield where / "env"


def test_the_package_imports_nothing_of_parleys_server_or_the_emulator():
    imported: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    stdlib = set(sys.stdlib_module_names)
    assert imported - stdlib == {"parley_client", "websockets"}


def test_wheel_holds_the_package_and_its_type_marker_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = {n for n in names if n.startswith("parley_client-0.1.0.dist-info/")}
    sources = {f"parley_client/{p.name}" for p in PACKAGE.iterdir() if p.is_file()}
    assert "parley_client/py.typed" in sources
    assert names - dist_info == sources


def test_wheel_metadata_names_the_client_and_only_websockets(wheel):
    with zipfile.ZipFile(wheel) as whl:
        meta = email.parser.Parser().parsestr(whl.read("parley_client-0.1.0.dist-info/METADATA").decode())
    assert (meta["Name"], meta["Version"], meta["Requires-Python"]) == ("parley-client", "0.1.0", ">=3.11")
    required = [
        re.split(r"[\[<>=;! ]", r, maxsplit=1)[0].lower() for r in meta.get_all("Requires-Dist") or []
    ]
    assert required == ["websockets"]
    assert "ParleyClient" in meta.get_payload()  # the long description is the README


async def test_the_installed_wheel_runs_the_readme_bot(venv: Path, tmp_path: Path):
    # GIVEN the README's bot, written out as a script, and a fake Parley
    bot = re.search(r"```python\n(.*?)```", (CLIENT / "README.md").read_text(), re.S)
    assert bot is not None
    script = tmp_path / "bot.py"
    script.write_text(bot.group(1))
    async with fake_parley() as fake:
        env = _clean_env() | {"PARLEY_URL": fake.url, "PARLEY_TOKEN": GOOD_TOKEN}
        # WHEN the fresh virtualenv's Python runs it (outside the repository: only the wheel can import)
        proc = await asyncio.create_subprocess_exec(
            str(venv / "bin" / "python"),
            str(script),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            # THEN it said hello (stored, acked), answers a ping, and stops when told
            assert line.startswith("sent 1"), (line, await proc.stderr.read() if proc.stderr else b"")
            await fake.post("general", "!ping")
            for _ in range(600):
                if any(m["text"] == "pong" for m in fake.messages["general"]):
                    break
                await asyncio.sleep(0.05)
            await fake.post("general", "!quit")
            assert await asyncio.wait_for(proc.wait(), 60) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert [m["text"] for m in fake.messages["general"]] == ["hello from a bot", "!ping", "pong", "!quit"]
    assert fake.tokens == [GOOD_TOKEN]
