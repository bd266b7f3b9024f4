"""The S3 endpoint of a farm run on one machine without Docker (``make farm-up``, the tests,
``bench/farm.py``): moto's S3 service on uvicorn. compose.yaml and k8s/ use MinIO instead.

    python -m workers.local_s3 --port 9000

Why not ``moto_server``: it runs werkzeug's development server, which closes the connection
after every response, so boto3 connects anew for each object, and it matches each request
against the URL patterns of every AWS service moto knows. Served here are moto's S3 routes
alone, through uvicorn, which keeps connections alive as S3 and MinIO do: moto then spends
1.8 ms of CPU per request instead of 3.75, and a 1 KB PUT takes 3.3 ms instead of 7.8.
moto is a dev dependency, like this endpoint.
"""

from __future__ import annotations

import argparse

import uvicorn
from a2wsgi import WSGIMiddleware
from moto.moto_server.werkzeug_app import create_backend_app


def create_app() -> WSGIMiddleware:
    s3 = create_backend_app("s3")
    s3.debug = False  # moto turns Flask's debug helpers on for every request
    return WSGIMiddleware(s3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
