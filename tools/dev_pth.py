"""Put a checkout on the running interpreter's import path (development builds).

    VENV/bin/python tools/dev_pth.py CHECKOUT

writes ``fastloop-dev.pth`` (one line: CHECKOUT) into that interpreter's
site-packages, so the venv imports the in-place build of CHECKOUT: the
Makefile's .venv and .venv-bench and compat/run.py's per-project venvs.
"""

import os
import site
import sys


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    path = os.path.join(site.getsitepackages()[0], "fastloop-dev.pth")
    with open(path, "w") as f:
        f.write(os.path.abspath(sys.argv[1]) + "\n")


if __name__ == "__main__":
    main()
