"""A dependency's absence, told from the work's own errors: each client's real error against a
port where nothing listens."""

from __future__ import annotations

import boto3
import pytest
import redis
from botocore.config import Config
from sqlalchemy import create_engine, text

from shared.infra.outages import dependency_down
from tests.services import failing_object_store
from workers.farm_processes import free_port


def raised(action) -> BaseException:
    with pytest.raises(Exception) as caught:
        action()
    return caught.value


def test_a_database_away_is_told():
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/lyre")
    error = raised(lambda: engine.connect().execute(text("SELECT 1")))
    assert dependency_down(error) == "database"


def test_redis_away_is_told():
    client = redis.Redis(port=free_port(), socket_connect_timeout=1)
    assert dependency_down(raised(client.ping)) == "redis"


def s3_client_of_nothing(endpoint: str | None = None):
    return boto3.client(
        "s3",
        endpoint_url=endpoint or f"http://127.0.0.1:{free_port()}",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),  # no retry
    )


def test_the_object_store_away_is_told_even_when_wrapped():
    s3 = s3_client_of_nothing()

    def put_in_a_stage() -> None:
        try:
            s3.put_object(Bucket="b", Key="k", Body=b"x")
        except Exception as exc:
            raise RuntimeError("could not write the chunk") from exc

    assert dependency_down(raised(put_in_a_stage)) == "object store"


@pytest.mark.parametrize(
    ("status", "code", "down"),
    [(503, "SlowDown", "object store"), (500, "InternalError", "object store"),
     (403, "AccessDenied", None)],
)  # fmt: skip
def test_an_object_store_failing_on_its_side_is_told_from_a_refusal(status, code, down):
    """S3 fails on its own side now and then (a 5xx: try again later); a 4xx is the request's."""
    with failing_object_store(status, code) as endpoint:
        s3 = s3_client_of_nothing(endpoint)
        assert dependency_down(raised(lambda: s3.get_object(Bucket="b", Key="k"))) == down


def test_a_database_pool_with_no_connection_free_is_told():
    engine = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.1,
    )
    with engine.connect():
        assert dependency_down(raised(engine.connect)) == "database"
    engine.dispose()


def test_the_work_s_own_errors_are_not_outages():
    assert dependency_down(ValueError("no such voice")) is None
    refused_before_sending = raised(lambda: s3_client_of_nothing().head_bucket(Bucket=""))
    assert dependency_down(refused_before_sending) is None
