"""Starting and stopping `langtune serve` for the serve tests: a free loopback port, the bound port read
from the server's first stdout line, /health polled until it answers, SIGTERM to stop."""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import interop_support as S


class Server:
    def __init__(self, *args, api_key=None, timeout=120):
        cmd = [S.LANGTUNE_BIN, "serve", "--host", "127.0.0.1", "--port", "0", *map(str, args)]
        if api_key:
            cmd += ["--api-key", api_key]
        self.api_key = api_key
        self.stderr_lines = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        deadline = time.time() + timeout
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise AssertionError(f"langtune serve did not start: {line!r}\n" + "".join(self.stderr_lines[-20:]))
        self.base = line.strip().rsplit(" ", 1)[-1]
        self.host, self.port = "127.0.0.1", int(self.base.rsplit(":", 1)[-1])
        while time.time() < deadline:
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("langtune serve did not answer /health")

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def headers(self, key="default"):
        key = self.api_key if key == "default" else key
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def request(self, method, path, body=None, key="default", timeout=120):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=self.headers(key))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def get(self, path, key="default"):
        return self.request("GET", path, key=key, timeout=5)

    def post(self, path, body, key="default", timeout=120):
        return self.request("POST", path, body, key=key, timeout=timeout)

    def health(self):
        return json.loads(self.get("/health")[1])

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def make_adapter(model, path, seed, targets="q,k,v,o,gate,up,down"):
    """A PEFT adapter with random B, so it changes the answers."""
    S.langtune("adapter-init", "--model", model, "--output", path, "--rank", 8, "--targets", targets,
               "--seed", seed, "--random-b", "--b-amplitude", 0.05)
    return path


def generate(model, prompt, max_tokens, adapter=None, chat=True):
    """`langtune generate --json` (greedy): {"text", "ids", "prompt_ids", ...}."""
    args = ["generate", "--model", model, "--prompt", prompt, "--max-tokens", max_tokens, "--json"]
    if chat:
        args.append("--chat")
    if adapter:
        args += ["--adapter", adapter, "--quantize", "none"]
    return json.loads(S.langtune(*args))
