"""The OpenAPI document says what the api answers: each error a problem of a documented kind,
each refusal and key on the operations that have them, the schema's "not blank" the code's."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from api.app import create_app
from api.errors import ApiError
from api.schemas import NOT_BLANK

ROOT = Path(__file__).resolve().parents[2]
PROBLEMS = {"Problem", "OpenAIProblem", "Unready"}


@pytest.fixture(scope="module")
def document() -> dict:
    return create_app().openapi()


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def kinds(of: type[ApiError] = ApiError) -> list[type[ApiError]]:
    return [k for sub in of.__subclasses__() for k in (sub, *kinds(sub))]


def test_every_error_an_operation_answers_is_a_problem(document):
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/problem+json"]["schema"]["$ref"]
                assert schema.rsplit("/", 1)[1] in PROBLEMS, (name, status)
    assert "HTTPValidationError" not in json.dumps(document)  # FastAPI's, never answered


def refusable(operation: dict) -> bool:
    """Whether the operation can refuse a request as its schema says: a body, or a parameter
    that is more than any string."""
    free = ({"type": "string"}, {"anyOf": [{"type": "string"}, {"type": "null"}]})
    schemas = [
        {k: v for k, v in p["schema"].items() if k != "title"}
        for p in operation.get("parameters", [])
    ]
    return bool(operation.get("requestBody")) or any(s not in free for s in schemas)


def test_an_operation_that_can_refuse_a_request_documents_its_refusal(document):
    for name, operation in operations(document):
        if refusable(operation):
            refusal = "400" if name.endswith("/audio/speech") else "422"
            assert refusal in operation["responses"], name


def test_the_operations_behind_a_key_and_only_they_ask_for_one(document):
    keyed = {name for name, op in operations(document) if "401" in op["responses"]}
    asking = {name for name, op in operations(document) if op.get("security")}
    assert keyed == asking and "GET /v1/jobs" in keyed and "GET /healthz" not in keyed


def test_a_204_has_no_content(document):
    deleted = document["paths"]["/v1/jobs/{job_id}"]["delete"]["responses"]["204"]
    assert "content" not in deleted


def test_every_kind_of_problem_is_in_the_docs():
    listed = (ROOT / "docs" / "errors.md").read_text()
    for kind in kinds():
        row = f"| `/problems/{kind.slug()}` | {kind.status_code} | {kind.title()} |"
        assert row in listed, f"docs/errors.md lacks {kind.__name__}"


def test_not_blank_is_what_strip_leaves_something_of():
    """The schema's pattern and the code's ``str.strip()`` agree on every character."""
    pattern = re.compile(NOT_BLANK)
    disagree = [
        hex(c)
        for c in range(sys.maxunicode + 1)
        if bool(pattern.search(chr(c))) != bool(chr(c).strip())
    ]
    assert disagree == []


def test_a_jobs_file_is_documented_as_the_types_the_intake_reads(document):
    """A file is read by its content (shared.text.documents): the document names what it may be,
    and the fuzzer makes files of those types (tests/e2e/fuzz_hooks.py)."""
    form = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    types = [t.strip() for t in form["encoding"]["file"]["contentType"].split(",")]
    assert types == [
        "text/plain",
        "text/markdown",
        "text/html",
        "application/xhtml+xml",
        "application/epub+zip",
    ]


def test_a_chapters_corrected_text_is_documented_as_not_blank(document):
    schema = document["components"]["schemas"]["ChapterRedo"]["properties"]["text"]
    assert schema["pattern"] == NOT_BLANK and re.search(schema["pattern"], "") is None
