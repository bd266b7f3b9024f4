"""The services bench/chaos.py runs beside the farm: a webhook receiver that records each
delivery, and those it breaks, each its own so that breaking it disturbs nothing else on the
machine: a Postgres cluster of its own (initdb, pg_ctl), a Redis server of its own that
keeps nothing on disk, and a TCP proxy in front of the farm's S3 endpoint that can refuse
connections for a while (moto's S3 keeps its objects in memory: stopping it would lose them,
while a real S3 or MinIO that goes away comes back with its objects)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import redis


class Hooks(BaseHTTPRequestHandler):
    """Records each delivery: (webhook-id, job id, event type)."""

    received: ClassVar[list[tuple[str, str, str]]] = []
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Hooks.lock:
            Hooks.received.append((self.headers["webhook-id"], body["data"]["id"], body["type"]))
        self.send_response(204)
        self.end_headers()


PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def _as_postgres(argv: list[str]) -> list[str]:
    """Postgres refuses to run as root: as root, run it as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresCluster:
    """A throwaway cluster on its own port, trust auth, its data in ``root``."""

    def __init__(self, root: Path, port: int) -> None:
        if PG_BIN is None and shutil.which("pg_ctl") is None:
            raise RuntimeError("no Postgres server binaries (initdb, pg_ctl) on this machine")
        self.bin = PG_BIN or Path(shutil.which("pg_ctl") or "").parent
        self.data, self.port = root / "pgdata", port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/lyre"
        root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the postgres user must reach its data through root's parents
            shutil.chown(root, "postgres")
            for folder in root.parents:
                if folder.stat().st_uid == 0 and not folder.stat().st_mode & 0o001:
                    folder.chmod(folder.stat().st_mode | 0o711)
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(_as_postgres(initdb), check=True, capture_output=True)

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        argv = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w"]
        argv += ["-l", str(self.data / "server.log"), *args]
        subprocess.run(_as_postgres(argv), check=True, capture_output=True)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """Fast shutdown (every session is ended: AdminShutdown on each pooled connection)."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")


class RedisServer:
    """redis-server on its own port, saving nothing: a restart comes back empty."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.child: subprocess.Popen | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not answer in 30 s")

    def stop(self) -> None:
        if self.child is not None:
            self.child.kill()
            self.child.wait()

    def restart(self) -> None:
        """SIGKILL, then start again: everything in it (queues, Lyre's keys) is gone."""
        self.stop()
        self.start()


class TcpProxy:
    """Forwards ``listen_port`` to ``target_port`` on loopback; ``down()`` closes the listener
    and every connection through it, so that clients are refused until ``up()``."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.listen_port))
        listener.listen(128)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self.lock:
            doomed, self.sockets = [self.listener, *self.sockets], set()
            self.listener = None
        for sock in doomed:
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_RDWR)  # the other direction's thread ends too
            except OSError:
                pass
            source.close()
            with self.lock:
                self.sockets.discard(source)
