"""The S3 endpoint of a farm run on one machine without Docker (``make farm-up``, the tests,
``bench/farm.py``): moto's S3 service on uvicorn. compose.yaml and k8s/ use MinIO instead.

    python -m workers.local_s3 --port 9000

Why not ``moto_server``: it runs werkzeug's development server, which closes the connection
after every response, so boto3 connects anew for each object, and it matches each request
against the URL patterns of every AWS service moto knows. Served here are moto's S3 routes
alone, through uvicorn, which keeps connections alive as S3 and MinIO do.

moto's handling of a request is a fraction of a millisecond of CPU under moto's own lock, so
it runs on the event loop itself: the request body is read whole, moto answers, and the
response goes out in one write. A WSGI-to-ASGI bridge with a thread pool (a2wsgi) spent more
CPU handing each request and each piece of its body between threads than moto spent on it.
moto is a dev dependency, like this endpoint.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import uvicorn
from moto.moto_server.werkzeug_app import create_backend_app

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Message = dict[str, Any]


def wsgi_environ(scope: Message, body: bytes) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP request whose body has been read whole."""
    host, port = scope.get("server") or ("127.0.0.1", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode().decode("latin1"),
        "QUERY_STRING": scope["query_string"].decode("latin1"),
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,  # whole, even when it came chunked without a length
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = f"HTTP_{name}"
        value = raw_value.decode("latin1")
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    return environ


class InLoopWSGI:
    """An ASGI app that answers HTTP requests with a WSGI app called on the event loop."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":  # lifespan: nothing to start or stop
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):  # type: ignore[no-untyped-def]
            started[:] = [int(status.split(" ", 1)[0]), headers]

        result = self.app(wsgi_environ(scope, bytes(body)), start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        encoded = [(k.lower().encode("latin1"), v.encode("latin1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": content})


def create_app() -> InLoopWSGI:
    s3 = create_backend_app("s3")
    s3.debug = False  # moto turns Flask's debug helpers on for every request
    return InLoopWSGI(s3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
