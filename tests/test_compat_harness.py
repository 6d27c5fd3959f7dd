"""compat/force_fastloop.py, the plugin that puts fastloop in force in other
projects' suites (make compat), under a suite's own warning settings.

uvicorn's and aiohttp's pytest configs turn every warning into an error; on
3.14+ the stdlib deprecates set_event_loop_policy, so the plugin's own install
of the policy must not warn, while the suite's own calls still warn as the
stdlib does.
"""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUITE = textwrap.dedent("""
    import asyncio
    import sys
    import warnings

    import fastloop


    def test_policy_is_fastloop():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            policy = asyncio.get_event_loop_policy()
        assert isinstance(policy, fastloop.Policy)
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, fastloop.Loop)
        finally:
            loop.close()


    def test_suite_own_call_warns_like_stdlib():
        # What the stdlib does for this call on the running Python, compared
        # with what the plugin's wrapper does.
        with warnings.catch_warnings(record=True) as plain:
            warnings.simplefilter("always")
            asyncio.set_event_loop_policy.__dict__[
                "_fastloop_compat_original"](fastloop.Policy())
        with warnings.catch_warnings(record=True) as wrapped:
            warnings.simplefilter("always")
            asyncio.set_event_loop_policy(None)
        assert [(w.category, str(w.message)) for w in wrapped] == [
            (w.category, str(w.message)) for w in plain]
""")


def test_plugin_installs_under_filterwarnings_error(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    env = dict(os.environ, FASTLOOP_COMPAT_MODE="fastloop",
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "compat"), ROOT]))
    env.pop("FASTLOOP_COMPAT_COUNT_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "force_fastloop", "-p", "no:cacheprovider",
         "-p", "no:asyncio",
         "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout, proc.stdout[-4000:]
