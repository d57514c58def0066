"""Every script in examples/library/ runs to completion and says `ok` (they are documentation:
docs/library.md points at them, so they must keep working)."""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "examples" / "library").glob("*.py"))


def test_there_are_examples():
    assert {p.name for p in SCRIPTS} >= {"translate.py", "embed_aiohttp.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs(script):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.rstrip().endswith("ok"), done.stdout[-2000:]
