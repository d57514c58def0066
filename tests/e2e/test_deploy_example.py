"""examples/deploy/run.sh: two ferryllm processes behind a real HAProxy sharing one real
redis-server; load through the balancer reaches both instances and the fleet admits exactly the
shared limit (20 a minute), not 20 per instance."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "examples" / "deploy" / "run.sh"


def test_two_instances_behind_haproxy_hold_one_limit():
    out = subprocess.run([str(RUN), "30"], env={**os.environ, "PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    assert result["status"] == {"200": 20, "429": 10}
    assert result["served"] == {"one": 15, "two": 15}  # round robin: both instances answered
    assert "local_admissions_total 0.0" in out.stdout
    assert "team-a-" not in out.stdout  # the client key never reaches Redis or the output
