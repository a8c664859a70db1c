"""Local KMS API endpoints for the aws-kms tests: moto in server mode, and a canned-error stub.

Both listen on 127.0.0.1 on a free port and speak HTTP to a real boto3 client; nothing in boto3
is patched. Under ``CI=true`` a missing moto or boto3 fails the test instead of skipping it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


AWS_KMS_BACKEND = "authhero_encrypt.envelope.backends.aws_kms.AwsKmsKeyProvider"


def kms_providers(endpoint: str, key_id: str | None, **options: Any) -> dict[str, Any]:
    """``ENCRYPTION_ENVELOPE_PROVIDERS`` with an ``aws-kms`` entry for the server at
    ``endpoint``: one attempt per call and a 2-second timeout unless ``options`` say more."""
    return {
        "aws-kms": {
            "BACKEND": AWS_KMS_BACKEND,
            "OPTIONS": {
                "key_id": key_id,
                "region": REGION,
                "endpoint_url": endpoint,
                "max_attempts": 1,
                "timeout": 2,
                **options,
            },
        }
    }


def require(module: str, extra: str) -> None:
    """Skip (outside CI) or fail (under CI=true) when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is not None:
        return
    reason = f"{module} is not installed: pip install -e '.[{extra}]'"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """Terminate a server this test run started (killed if it does not stop in 10 seconds)."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1, started and stopped by the tests."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with status {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start listening within 30 seconds")

    def stop(self) -> None:
        stop_process(self.process)

    def client(self) -> Any:
        import boto3

        return boto3.session.Session(**session_credentials()).client(
            "kms", region_name=REGION, endpoint_url=self.url
        )


def session_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
    }


class StubKms:
    """An HTTP server that answers every KMS call with one error, in KMS's JSON error shape.

    For the failures moto does not simulate (a disabled key, a key pending deletion,
    throttling): botocore parses the answer into the same ``ClientError`` real KMS produces.
    ``requests`` lists the ``X-Amz-Target`` of each call received.
    """

    def __init__(self, code: str, message: str = "", status: int = 400) -> None:
        self.code, self.message, self.status = code, message, status
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stub.requests.append(self.headers.get("X-Amz-Target", ""))
                body = json.dumps({"__type": stub.code, "message": stub.message}).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubKms:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
