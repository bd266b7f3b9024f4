"""The OpenAI-compatible client against a completion server on loopback.

The server streams ``/v1/completions`` as ``vllm serve`` 0.33 does (its
``CompletionStreamResponse`` events: the prompt's ids on the first, the generated ids in
``choices[0].token_ids`` when the request asks with ``return_token_ids``, then
``data: [DONE]``; an error after the stream started is a ``data: {"error": …}`` event) and runs
the tiny checkpoint through the transformers backend, so the ids that come back are real
generations. ``make check-vllm`` feeds the client events made by vLLM's own classes.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.speech.codec import SnacCodes, parse_tokens
from shared.speech.engine import EngineError, EngineLoop, SpeechRequest
from shared.speech.factory import build_engine
from shared.speech.orpheus import Sampling
from shared.speech.transformers_backend import TransformersBackend

FAILURES = {"no-such-model", "dies-mid-stream", "hangs-up", "ignores-ids"}


def stream_events(body: dict, ids: list[int]) -> list[bytes]:
    """The events vLLM sends for ``ids``, five tokens at a time."""
    events = []
    for start in range(0, len(ids), 5):
        choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": None}
        if body.get("return_token_ids") and body["model"] != "ignores-ids":
            choice["token_ids"] = ids[start : start + 5]
            if start == 0:
                choice["prompt_token_ids"] = body["prompt"]
        event = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": body["model"]}
        events.append(f"data: {json.dumps({**event, 'choices': [choice]})}\n\n".encode())
    if body["model"] == "dies-mid-stream":
        error = {"message": "Internal server error", "type": "InternalServerError", "code": 500}
        events[1:] = [f"data: {json.dumps({'error': error})}\n\n".encode()]
    if body["model"] == "hangs-up":
        return events[:1]
    return [*events, b"data: [DONE]\n\n"]


def make_handler(backend: TransformersBackend, seen: list[dict]):
    class Completions(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            if body["model"] not in {"orpheus-test", *FAILURES} - {"no-such-model"}:
                self.send_error(404, "model not found")
                return
            sampling = Sampling(
                body["max_tokens"],
                body["temperature"],
                body["top_p"],
                body["repetition_penalty"],
                body["seed"],
            )
            ids = backend._generate(body["prompt"], sampling, None)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in stream_events(body, ids):
                self.wfile.write(event)

    return Completions


@pytest.fixture()
def server(orpheus_dir):
    seen: list[dict] = []
    backend = TransformersBackend(str(orpheus_dir))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(backend, seen))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1", backend, seen
    httpd.shutdown()
    httpd.server_close()


def openai_engine(orpheus_settings, url: str, model: str):
    update = {
        "backend": "openai",
        "openai_url": url,
        "openai_model": model,
        "openai_api_key": "secret",
        "urgent_seats": 0,  # the engine itself, not behind seats kept for urgent chunks
    }
    orpheus = orpheus_settings.orpheus.model_copy(update=update)
    return build_engine(orpheus_settings.model_copy(update={"orpheus": orpheus}), "orpheus")


def test_streams_token_ids_back_from_the_server(server, orpheus_settings):
    """The ids the server streams, each frame to a listener as its ids come, ahead of books
    in the server's queue (vLLM's priority) where the request is urgent."""
    url, backend, seen = server
    engine = openai_engine(orpheus_settings, url, "orpheus-test")
    loop = EngineLoop()
    heard: list = []
    request = SpeechRequest(
        "job-0", "Hello from the server.", "leah", seed=4, listen=heard.append, urgent=True
    )
    try:
        speech = loop.run(engine.generate(request))
    finally:
        loop.run(engine.aclose())
        loop.close()
    sent = seen[0]
    assert sent["path"] == "/v1/completions" and sent["auth"] == "Bearer secret"
    assert sent["prompt"][:2] == [128259, 128000] and sent["prompt"][-1] == 128257
    direct = backend._generate(sent["prompt"], engine.engine.sampling_for(request), None)
    assert speech.tokens == len(direct)
    assert speech.codes.to_tokens() == parse_tokens(direct).to_tokens()
    assert SnacCodes.join(heard).to_tokens() == speech.codes.to_tokens()
    assert sent["priority"] == 0


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("no-such-model", "answered 404"),
        ("dies-mid-stream", "mid-stream: Internal server error"),
        ("hangs-up", "without \\[DONE\\]"),
        ("ignores-ids", "sent no token ids"),
    ],
)
def test_a_server_failure_fails_the_chunk(server, orpheus_settings, model, error):
    """Never a chunk cut short: a refused request, an error event, a stream cut off, or a
    server that does not send the ids are each an EngineError (the chunk is retried)."""
    url, _, _ = server
    engine = openai_engine(orpheus_settings, url, model)
    loop = EngineLoop()
    try:
        with pytest.raises(EngineError, match=error):
            loop.run(engine.generate(SpeechRequest("job-1", "Hi there.", "tara", seed=1)))
    finally:
        loop.run(engine.aclose())
        loop.close()
