"""deploy/nginx.conf run by this machine's nginx in front of a local upstream, as the compose file's `proxy` runs
it in front of `web`: for the tests of what the proxy does, and for bench/overload_bench.py. Needs `nginx` on the
PATH (Debian's nginx-light).

proxy = NginxProxy(upstream_port=8001).start()   # proxy.url: http://127.0.0.1:<its port>
proxy.stop()
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from tests.e2e.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "nginx.conf"


def nginx_path() -> str | None:
    """Debian puts nginx in /usr/sbin, which a user's PATH may lack."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def nginx_available() -> bool:
    return nginx_path() is not None


class NginxProxy:
    def __init__(self, upstream_port: int, *, worker_processes: int = 1) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.worker_processes = worker_processes
        self.workdir = Path(tempfile.mkdtemp(prefix="nginx-proxy-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "NginxProxy":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        (self.workdir / "static").mkdir()
        server = (
            CONFIG.read_text()
            .replace("server web:8000", f"server 127.0.0.1:{self.upstream_port}")
            .replace("listen 8000;", f"listen 127.0.0.1:{self.port};")
            .replace("/usr/share/nginx/static/", f"{self.workdir}/static/")
        )
        (self.workdir / "server.conf").write_text(server)
        temp = {name: self.workdir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        # As root, nginx's workers would run as `nobody`, who cannot write this temporary directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.workdir / "nginx.conf").write_text(
            f"{user}worker_processes {self.worker_processes};\npid {self.workdir}/nginx.pid;\n"
            f"error_log {self.workdir}/error.log warn;\nevents {{ worker_connections 4096; }}\n"
            "http {\n    access_log off;\n"
            + "".join(f"    {name}_temp_path {path};\n" for name, path in temp.items()).replace(
                "    body_temp_path", "    client_body_temp_path"
            )
            + f"    include {self.workdir}/server.conf;\n}}\n"
        )
        log = self.workdir / "error.log"
        self.process = subprocess.Popen(
            [
                nginx_path(),
                "-p",
                str(self.workdir),
                "-e",
                str(log),
                "-c",
                str(self.workdir / "nginx.conf"),
                "-g",
                "daemon off;",
            ]
        )
        deadline = time.monotonic() + 10
        while not self._up():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else 'no error log'}")
            time.sleep(0.05)

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/proxy-healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
