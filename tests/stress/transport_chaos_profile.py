"""Long profile of the transport chaos test (tests/test_transport_chaos.py).

    .venv/bin/python tests/stress/transport_chaos_profile.py [--examples N] [pytest args...]

runs the differential chaos property with max_examples=N (default: the
FASTLOOP_CHAOS_EXAMPLES environment variable, else 100000), with Hypothesis
statistics, the counts of examples the stdlib loop disagreed with itself on,
and no per-test timeout (100,000 examples take a few hours). `make chaos`
runs it; `make chaos FASTLOOP_CHAOS_EXAMPLES=2000` for a shorter one.
Not collected by pytest (no test_ prefix).
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TEST = os.path.join(os.path.dirname(HERE), "test_transport_chaos.py")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int,
                        default=int(os.environ.get("FASTLOOP_CHAOS_EXAMPLES") or 100000))
    args, rest = parser.parse_known_args(argv)
    env = dict(os.environ, FASTLOOP_CHAOS_EXAMPLES=str(args.examples))
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--timeout=0",
           "--hypothesis-show-statistics", TEST, *rest]
    print(f"transport chaos profile: {args.examples} examples", flush=True)
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main())
