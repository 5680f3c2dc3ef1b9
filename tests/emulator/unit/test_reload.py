"""Hot reload's bookkeeping: which folders are watched and which functions a change touches."""

from __future__ import annotations

from pathlib import Path

from ws_emulator.runtime.reload import affected_functions, describe_change, watched_roots
from ws_emulator.template.loader import load_template

APP = Path(__file__).parents[1] / "fixtures" / "app" / "template.yaml"
DEV = Path(__file__).parents[1] / "fixtures" / "devserver" / "template.yaml"


def test_every_code_folder_and_layer_is_watched_once():
    template = load_template(DEV)
    roots = watched_roots(template)
    base = DEV.parent.resolve()
    assert sorted(roots) == sorted(
        [base / "functions" / "echo", base / "functions" / "recorder", base / "layer" / "python"]
    )


def test_a_change_in_a_functions_folder_touches_that_function_only():
    template = load_template(APP)
    code = template.functions["AlphaFunction"].code_dir
    assert affected_functions(template, [code / "util.py"]) == ["AlphaFunction"]


def test_a_change_in_a_shared_layer_touches_every_function_that_uses_it():
    template = load_template(APP)
    layer = template.layers["SharedLayer"].path
    assert affected_functions(template, [layer / "shared_helpers.py"]) == sorted(template.functions)


def test_a_change_elsewhere_touches_nothing():
    template = load_template(APP)
    assert affected_functions(template, [APP.parent / "README.md"]) == []


def test_the_log_line_names_files_and_functions():
    line = describe_change([Path("/x/app.py"), Path("/x/a.py"), Path("/x/b.py"), Path("/x/c.py")], ["F", "G"])
    assert (
        line == "reload: a.py, app.py, b.py and 1 more changed; next invocation of F, G starts a fresh worker"
    )
