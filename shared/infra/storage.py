"""Object storage for chunk data and outputs, and the one place that builds their keys.

``S3Store`` talks to S3 or any S3-compatible endpoint (MinIO, moto's server) through boto3;
``LocalStore`` is a folder standing in for the bucket in embedded mode. Writes are whole-object
and idempotent: a retried chunk rewrites the same key with the same bytes.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shared.infra.settings import StorageSettings

PIECE = 2**20  # what a streamed read hands on at a time

# --- keys -------------------------------------------------------------------------------------


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


def chunks_prefix(job_id: str) -> str:
    """Where the job's chunk audio lies, which expires before its files."""
    return f"{job_prefix(job_id)}chunks/"


def chunk_audio_key(job_id: str, index: int) -> str:
    """A chunk's finished PCM (float32 little-endian, 24 kHz mono)."""
    return f"{chunks_prefix(job_id)}{index:06d}.f32"


def output_key(job_id: str, version: int, name: str) -> str:
    """A file the stitch made (``book.mp3``, ``chapter-002.mp3``, ``captions.vtt`` …); each
    version of a job's outputs has its own, so that the last stays while the next is made."""
    return f"{job_prefix(job_id)}v{version}/{name}"


def cover_key(job_id: str, extension: str) -> str:
    """The book's cover image, kept from submission for the M4B."""
    return f"{job_prefix(job_id)}cover.{extension}"


def source_key(job_id: str) -> str:
    """The submitted EPUB, kept for a read-along EPUB made of its own pages."""
    return f"{job_prefix(job_id)}source.epub"


def voice_sample_key(engine: str, voice: str, text: str) -> str:
    """A voice's sample (MP3), made once per engine and sentence and kept for every tenant;
    ``engine`` names what speaks (``espeak``, or ``orpheus`` and its model)."""
    digest = hashlib.sha256(f"{engine}\0{text}".encode()).hexdigest()[:16]
    return f"voices/{voice}/sample-{digest}.mp3"


# --- stores -----------------------------------------------------------------------------------


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def find_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None where there is no such object."""
        ...

    def upload_file(self, key: str, path: Path, content_type: str) -> None: ...
    def download_file(self, key: str, path: Path) -> bool:
        """Whether there was such an object, written to ``path``."""
        ...

    def read_pieces(self, key: str) -> Iterator[bytes]:
        """The object's bytes a piece (``PIECE``) at a time: a download streamed on."""
        ...

    def presign(self, key: str, filename: str) -> str: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def delete_keys(self, keys: list[str]) -> None: ...
    def check(self) -> None: ...


class LocalStore:
    """A folder standing in for the bucket."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")  # duplicates may race
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: readers see the old object or the new one, whole

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def find_bytes(self, key: str) -> bytes | None:
        try:
            return self.get_bytes(key)
        except FileNotFoundError:
            return None

    def upload_file(self, key: str, path: Path, content_type: str) -> None:
        self.path(key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, self.path(key))

    def download_file(self, key: str, path: Path) -> bool:
        if not self.path(key).is_file():
            return False
        shutil.copyfile(self.path(key), path)
        return True

    def read_pieces(self, key: str) -> Iterator[bytes]:
        with self.path(key).open("rb") as file:
            while piece := file.read(PIECE):
                yield piece

    def presign(self, key: str, filename: str) -> str:
        return self.path(key).resolve().as_uri()

    def delete_keys(self, keys: list[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        files = [p for p in self.path(prefix).rglob("*") if p.is_file()]
        shutil.rmtree(self.path(prefix), ignore_errors=True)
        return len(files)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)


class S3Store:
    def __init__(self, settings: StorageSettings) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.settings = settings
        self.bucket = settings.bucket

        def client(endpoint_url: str | None) -> Any:
            return boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=settings.region,
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=settings.secret_access_key,
                config=Config(signature_version="s3v4", retries={"mode": "standard"}),
            )

        self.client = client(settings.endpoint_url)
        self.signer = (
            client(settings.public_endpoint_url) if settings.public_endpoint_url else self.client
        )
        part = settings.multipart_chunk_mb * 2**20
        self.transfer = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=2
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def find_bytes(self, key: str) -> bytes | None:
        try:
            return self.get_bytes(key)
        except self.client.exceptions.NoSuchKey:
            return None

    def upload_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload in parts of ``multipart_chunk_mb``: memory stays at a few parts."""
        self.client.upload_file(
            str(path),
            self.bucket,
            key,
            Config=self.transfer,
            ExtraArgs={"ContentType": content_type},
        )

    def download_file(self, key: str, path: Path) -> bool:
        """Download in parts: memory stays at a few parts."""
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, key, str(path), Config=self.transfer)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise
        return True

    def read_pieces(self, key: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            yield from body.iter_chunks(PIECE)
        finally:
            body.close()

    def presign(self, key: str, filename: str) -> str:
        """A download URL on the public endpoint (signing needs no request to it)."""
        return self.signer.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=self.settings.presign_expiry_s,
        )

    def delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # S3 takes at most 1,000 keys per request
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``, and abort every upload in parts under it
        (unfinished, its parts are kept, and billed, out of the listing); how many of both."""
        deleted = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                deleted += len(keys)
        for page in self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for upload in page.get("Uploads", []):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                deleted += 1
        return deleted

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


def open_store(settings: StorageSettings) -> ObjectStore:
    return LocalStore(settings.local_root) if settings.backend == "local" else S3Store(settings)


# --- what goes in the objects ------------------------------------------------------------------


def put_pcm(store: ObjectStore, key: str, pcm: np.ndarray) -> None:
    store.put_bytes(key, pcm.astype("<f4").tobytes())


def get_pcm(store: ObjectStore, key: str) -> np.ndarray:
    return np.frombuffer(store.get_bytes(key), dtype="<f4")
