#!/bin/sh
# Start the mock (core 1) and ferryllm (core 0), run the issue-6 scenarios, print the table.
# Arguments go to benchmarks/run_all.py (e.g. --scenarios 1,6 --repeat 1, --quick, --out DIR).
cd "$(dirname "$0")/.." && exec python -m benchmarks.run_all "$@"
