"""The package's own shape: modules small enough to hold in one's head."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Past this a module is most likely two concepts (STYLE.md); split it rather than raise it.
MAX_MODULE_LINES = 400


def test_no_module_of_the_package_is_over_400_lines() -> None:
    # function/reaper links to reaper/: resolve so each module counts once.
    modules = {path.resolve() for folder in ("function", "reaper") for path in (ROOT / folder).rglob("*.py")}
    assert len(modules) > 20
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}
