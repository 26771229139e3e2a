"""A real ``groupware serve`` in its own process, for tests that kill it (kill -9).

The listeners bind port 0; the port is read from the server's own log line
(``listener.started service=… address=127.0.0.1:PORT``). Password hashing is made
cheap, as in the in-process servers of ``tests.support.servers``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from groupware.config import Config

FAST_HASHING = {
    "GROUPWARE_AUTH__ARGON2_TIME_COST": "1",
    "GROUPWARE_AUTH__ARGON2_MEMORY_KIB": "64",
    "GROUPWARE_AUTH__ARGON2_PARALLELISM": "1",
}
ONE_PROCESS = {"GROUPWARE_HTTP__PROCESSES_COUNT": "1"}


@contextmanager
def serve_in_subprocess(
    config: Config, service: str, listen: Mapping[str, str]
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``groupware serve --only SERVICE``; yields the process and the service's port.

    Args:
        config: the data folder's configuration (made with ``make_config``).
        service: the service to run (``http``, ``smtp`` …), whose port is yielded.
        listen: the listener variables, e.g. ``{"GROUPWARE_SMTP_LISTEN": "127.0.0.1:0"}``.
    """
    # One process: the kill -9 must hit the process that writes (HTTP workers would
    # be ended by SIGTERM instead, see groupware.http_workers).
    env = dict(os.environ) | dict(listen) | FAST_HASHING | ONE_PROCESS
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "groupware", "--data", str(config.data_dir), "serve"]
        + ["--only", service],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    listener = re.compile(rf"listener\.started service={service} address=127\.0\.0\.1:(\d+)")
    port = None
    for line in process.stderr:
        found = listener.search(line)
        if found:
            port = int(found.group(1))
            break
    assert port, f"the server did not log its {service} listener"
    drain = threading.Thread(target=process.stderr.read, daemon=True)
    drain.start()
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
        drain.join(timeout=5)
        process.stderr.close()
