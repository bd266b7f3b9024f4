"""The local S3 endpoint (moto on uvicorn, ``workers.local_s3``) over HTTP, as boto3 uses it."""

import os

import boto3
import httpx
import pytest

BUCKET = "lyre-test-local-s3"


@pytest.fixture()
def s3(s3_endpoint):
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test-secret",
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def test_objects_round_trip_whole(s3):
    body = os.urandom(3 * 2**20)  # a 30 s chunk of float32 PCM is about this size
    s3.put_object(Bucket=BUCKET, Key="jobs/a/chunks/000000.f32", Body=body)
    assert s3.get_object(Bucket=BUCKET, Key="jobs/a/chunks/000000.f32")["Body"].read() == body
    head = s3.head_object(Bucket=BUCKET, Key="jobs/a/chunks/000000.f32")
    assert head["ContentLength"] == len(body)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="jobs/a/")["Contents"]
    assert [item["Key"] for item in listed] == ["jobs/a/chunks/000000.f32"]


def test_a_multipart_upload_is_joined(s3, tmp_path):
    path = tmp_path / "output.mp3"
    path.write_bytes(os.urandom(12 * 2**20))
    config = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * 2**20)
    s3.upload_file(str(path), BUCKET, "jobs/a/output.mp3", Config=config)
    stored = s3.get_object(Bucket=BUCKET, Key="jobs/a/output.mp3")
    assert stored["Body"].read() == path.read_bytes()


def test_a_body_sent_in_chunks_without_a_length_is_read_whole(s3, s3_endpoint):
    """Transfer-Encoding: chunked, no Content-Length: the body still reaches moto whole."""
    parts = [os.urandom(70_000) for _ in range(5)]
    response = httpx.put(f"{s3_endpoint}/{BUCKET}/streamed", content=iter(parts))
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=BUCKET, Key="streamed")["Body"].read() == b"".join(parts)


def test_errors_come_back_as_s3_errors(s3):
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key="missing")


def test_download_urls_are_signed_for_the_public_endpoint(s3, s3_endpoint):
    """The farm talks to the store at one address (compose: minio:9000), clients download
    from another (localhost:9000): the URL is signed for the public one and downloads from it.
    (moto does not check signatures; that the host is signed is botocore's SigV4.)"""
    from shared.infra.settings import StorageSettings
    from shared.infra.storage import S3Store

    public = s3_endpoint.replace("127.0.0.1", "localhost")
    settings = StorageSettings(
        endpoint_url=s3_endpoint,
        public_endpoint_url=public,
        bucket=BUCKET,
        access_key_id="test",
        secret_access_key="test-secret",
    )
    store = S3Store(settings)
    store.put_bytes("jobs/b/output.mp3", b"ID3 audio")
    url = store.presign("jobs/b/output.mp3", "book.mp3")
    assert url.startswith(f"{public}/")
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200 and response.content == b"ID3 audio"
    assert "book.mp3" in response.headers["content-disposition"]
