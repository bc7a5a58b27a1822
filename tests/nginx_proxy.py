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


def nginx_available() -> bool:
    return shutil.which("nginx") is not None


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
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.workdir), "-c", str(self.workdir / "nginx.conf"), "-g", "daemon off;"]
        )
        deadline = time.monotonic() + 10
        while not self._up():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(self.workdir / 'error.log').read_text()}")
            time.sleep(0.05)
        return self

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/proxy-healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)
