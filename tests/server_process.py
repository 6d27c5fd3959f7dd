"""A server run as its own process, its log read as it comes.

Shared by the tests that start a real server command (uvicorn, gunicorn):
start it, wait for the log line that gives its port (port 0 was asked for),
keep the whole output for assertions, stop it with a signal as an operator
would and fail the test if it does not stop.
"""

import queue
import re
import signal
import subprocess
import threading

import pytest


class ServerProcess:
    def __init__(self, name, cmd, port_pattern, env, *, timeout=30, stop_signal=signal.SIGINT):
        self.name = name
        self.cmd = cmd
        self.timeout = timeout
        self.stop_signal = stop_signal
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = self._wait_for_port(re.compile(port_pattern))
        self.url = f"http://127.0.0.1:{self.port}"

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def _wait_for_port(self, pattern):
        while True:
            try:
                line = self._queue.get(timeout=self.timeout)
            except queue.Empty:
                self.proc.kill()
                pytest.fail(f"{self.name} did not start in {self.timeout} s:\n{self.output()}")
            if line is None:
                self.proc.wait(self.timeout)
                pytest.fail(f"{self.name} exited ({self.proc.returncode}):\n{self.output()}")
            match = pattern.search(line)
            if match:
                return int(match.group(1))

    def output(self):
        return "".join(self.lines)

    def stop(self):
        """Send the stop signal; the server must exit within the timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"{self.name} ignored {self.stop_signal.name}:\n{self.output()}")
        return self.proc.returncode
