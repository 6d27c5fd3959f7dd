"""``python -m fastloop``: version, build info, or run a program on fastloop.

    python -m fastloop --version
    python -m fastloop info
    python -m fastloop [--watchdog SECONDS] script.py [args...]
    python -m fastloop [--watchdog SECONDS] -m package.module [args...]

Running a program calls ``fastloop.install()`` first (the policy on 3.10-3.13,
the loop-factory route where policies are deprecated), so an unmodified
asyncio program (``asyncio.run``, ``asyncio.Runner``, ``asyncio.new_event_loop``)
runs on fastloop. Options go before the program; everything after the script
(or after ``-m MODULE``) is the program's own ``sys.argv``, as with
``python``. Errors in the command line itself (an unknown option, a script
that cannot be opened) print one line and exit with status 2, as ``python``
does; a module that cannot be found exits with 1, as ``python -m`` does.
"""

import argparse
import importlib.util
import os
import platform
import runpy
import sys

import fastloop

PROG = "python -m fastloop"

DESCRIPTION = "Run an asyncio program on fastloop, or describe the installed fastloop."

EPILOG = """\
commands:
  info                 versions, the poller in use, release or debug build
  SCRIPT [ARGS...]     run a script on fastloop (its sys.argv: SCRIPT ARGS...)
  -m MODULE [ARGS...]  run a module as a script on fastloop

environment:
  FASTLOOP_WATCHDOG=SECONDS  the same as --watchdog, for every fastloop loop
                             of a process started by another command line
                             (e.g. uvicorn --loop fastloop:new_event_loop)
"""

# Our options that take a value as the next argument (needed to find where
# our options stop and the program's arguments start).
_VALUE_OPTIONS = ("--watchdog",)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, as python's own command-line errors.
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def build_parser():
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     usage=f"{PROG} [-h] [--version] [--watchdog SECONDS] "
                           "(info | SCRIPT [ARGS...] | -m MODULE [ARGS...])")
    parser.add_argument("--version", action="version", version=f"fastloop {fastloop.__version__}")
    parser.add_argument(
        "--watchdog", type=_seconds, metavar="SECONDS",
        help="report every callback or task step that blocks the loop longer than SECONDS, "
             "with the stack where it blocks (to stderr, through the fastloop.watchdog logger)")
    parser.add_argument("-m", dest="module", metavar="MODULE",
                        help="run MODULE as a script (the arguments after it are its own)")
    parser.add_argument("program", nargs="?", metavar="SCRIPT | info", help=argparse.SUPPRESS)
    return parser


def split_argv(argv):
    """``(ours, program_args)``: our options and the program, then its arguments."""
    ours = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return ours + argv[i + 1:i + 2], argv[i + 2:]
        if arg == "-m":
            return ours + argv[i:i + 2], argv[i + 2:]
        if arg.startswith("-m") and not arg.startswith("--"):
            return ours + [arg], argv[i + 1:]
        if arg.startswith("-") and arg != "-":
            ours.append(arg)
            if arg in _VALUE_OPTIONS and i + 1 < len(argv):
                ours.append(argv[i + 1])
                i += 1
            i += 1
            continue
        return ours + [arg], argv[i + 1:]
    return ours, []


def info():
    loop = fastloop.new_event_loop()
    try:
        poller = loop._poller_name()
    finally:
        loop.close()
    lines = {
        "fastloop": fastloop.__version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "poller": poller,
        "build": "debug" if _debug_build() else "release",
    }
    try:
        import Cython

        lines["cython (installed)"] = Cython.__version__
    except ImportError:
        pass
    for key, value in lines.items():
        print(f"{key}: {value}")


def _debug_build():
    from fastloop import _loop

    return bool(getattr(_loop, "DEBUG_BUILD", False))


def _fail(status, message):
    sys.stderr.write(f"{PROG}: {message}\n")
    return status


def _module_missing(name):
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(f"{name}.__main__")
    except (ImportError, ValueError):
        return True
    return spec is None


def _run_module(name, args):
    if _module_missing(name):
        return _fail(1, f"No module named {name}")
    fastloop.install()
    sys.argv = [name, *args]
    runpy.run_module(name, run_name="__main__", alter_sys=True)
    return 0


def _run_script(path, args):
    if not os.path.isdir(path):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            return _fail(2, f"can't open file {os.path.abspath(path)!r}: "
                            f"[Errno {exc.errno}] {exc.strerror}")
    fastloop.install()
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    runpy.run_path(path, run_name="__main__")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    ours, program_args = split_argv(argv)
    opts = parser.parse_args(ours)
    if opts.module is None and opts.program is None:
        sys.stderr.write(parser.format_usage())
        return _fail(2, f"error: nothing to run (see {PROG} --help)")
    if opts.program == "info" and opts.module is None:
        if program_args or opts.watchdog is not None:
            parser.error("info takes no arguments or options")
        info()
        return 0
    if opts.watchdog is not None:
        fastloop.watchdog(opts.watchdog)
    if opts.module is not None:
        if opts.program is not None:
            parser.error(f"-m {opts.module}: unexpected argument {opts.program!r} before it")
        return _run_module(opts.module, program_args)
    return _run_script(opts.program, program_args)


if __name__ == "__main__":
    sys.exit(main())
