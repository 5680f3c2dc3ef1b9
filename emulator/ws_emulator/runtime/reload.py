"""Hot reload: watch each function's CodeUri, its layers and the template (watchfiles)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import watchfiles

from ws_emulator.template.specs import Template

# watchfiles waits this long for a burst of writes (an editor's save, a `git checkout`) to settle.
DEBOUNCE_MS = 200


def watched_roots(template: Template) -> list[Path]:
    """Every function's code folder and every layer folder, outermost first, without duplicates."""
    roots: set[Path] = set()
    for spec in template.functions.values():
        roots.add(spec.code_dir.resolve())
        roots.update(layer.path.resolve() for layer in spec.layers)
    # A folder inside another is already watched by the outer one (watching is recursive).
    ordered = sorted(roots, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for root in ordered:
        if not any(root.is_relative_to(outer) for outer in kept):
            kept.append(root)
    return kept


def affected_functions(template: Template, changed: Iterable[Path]) -> list[str]:
    """The functions whose CodeUri or one of whose layers holds one of the changed paths."""
    paths = [Path(p).resolve() for p in changed]
    hit = []
    for fid, spec in template.functions.items():
        folders = [spec.code_dir.resolve(), *(layer.path.resolve() for layer in spec.layers)]
        if any(path.is_relative_to(folder) for path in paths for folder in folders):
            hit.append(fid)
    return sorted(hit)


def describe_change(paths: Iterable[Path], functions: list[str], limit: int = 3) -> str:
    """One log line: which files changed and which functions get fresh workers."""
    names = sorted({Path(p).name for p in paths})
    files = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return f"reload: {files} changed; next invocation of {', '.join(functions)} starts a fresh worker"


CodeChanged = Callable[[set[Path]], None]
TemplateChanged = Callable[[], Awaitable[None]]


class Watcher:
    """Watches code and layer folders (recursively) and the template file; calls back on each change.

    Two watch tasks: the code folders, recursively, and the template's folder non-recursively with
    only the template file let through (its folder is usually the project root, with a virtualenv
    under it that nobody wants watched). `retarget()` follows a reloaded template's new folders.
    """

    def __init__(
        self,
        template_path: Path,
        template: Template,
        *,
        on_code_change: CodeChanged,
        on_template_change: TemplateChanged,
        log: logging.Logger,
    ) -> None:
        self.template_path = Path(template_path).resolve()
        self._roots = watched_roots(template)
        self._on_code = on_code_change
        self._on_template = on_template_change
        self._log = log
        self._code_task: asyncio.Task[None] | None = None
        self._template_task: asyncio.Task[None] | None = None
        self._code_stop = asyncio.Event()
        self._template_stop = asyncio.Event()

    @property
    def roots(self) -> list[Path]:
        return list(self._roots)

    async def start(self) -> None:
        self._start_code_task()
        self._template_task = asyncio.create_task(self._watch_template(), name="ws-emulator template watch")
        # Let both watchers register with the OS before start-up reports "ready".
        await asyncio.sleep(0)

    def _start_code_task(self) -> None:
        self._code_stop = asyncio.Event()
        roots = [root for root in self._roots if root.exists()]
        if roots:
            self._code_task = asyncio.create_task(
                self._watch_code(roots, self._code_stop), name="ws-emulator code watch"
            )

    async def retarget(self, template: Template) -> None:
        """Watch the folders of a reloaded template (restarts the code watch if they changed)."""
        roots = watched_roots(template)
        if roots == self._roots:
            return
        self._roots = roots
        await self._stop_code_task()
        self._start_code_task()

    async def _watch_code(self, roots: list[Path], stop: asyncio.Event) -> None:
        async for changes in watchfiles.awatch(*roots, stop_event=stop, debounce=DEBOUNCE_MS):
            paths = {Path(path) for _, path in changes}
            try:
                self._on_code(paths)
            except Exception:  # a reload problem must not end the watch
                self._log.exception("reload after a code change failed")

    async def _watch_template(self) -> None:
        target = self.template_path

        def only_template(_: watchfiles.Change, path: str) -> bool:
            return Path(path).resolve() == target

        async for _ in watchfiles.awatch(
            target.parent,
            stop_event=self._template_stop,
            debounce=DEBOUNCE_MS,
            recursive=False,
            watch_filter=only_template,
        ):
            try:
                await self._on_template()
            except Exception:
                self._log.exception("reloading %s failed; still serving the previous template", target)

    async def _stop_code_task(self) -> None:
        self._code_stop.set()
        if self._code_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._code_task
            self._code_task = None

    async def stop(self) -> None:
        await self._stop_code_task()
        self._template_stop.set()
        if self._template_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._template_task
            self._template_task = None
