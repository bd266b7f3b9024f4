"""The OpenAI-compatible client against a completion server on loopback.

The server speaks the streamed ``/v1/completions`` protocol as ``vllm serve`` does (token ids
in, ``token_id:N`` tokens out in server-sent events) and runs the tiny checkpoint through the
transformers backend, so the ids that come back are real generations.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.codec import parse_tokens
from shared.engines import EngineError, SpeechRequest, build_engine
from shared.engines.base import EngineLoop
from shared.engines.orpheus import Sampling
from shared.engines.transformers_backend import TransformersBackend


def make_handler(backend: TransformersBackend, seen: list[dict]):
    class Completions(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            if body["model"] != "orpheus-test":
                self.send_error(404, "model not found")
                return
            sampling = Sampling(
                body["max_tokens"],
                body["temperature"],
                body["top_p"],
                body["repetition_penalty"],
                body["seed"],
            )
            ids = backend._generate(body["prompt"], sampling)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for start in range(0, len(ids), 5):
                tokens = [f"token_id:{i}" for i in ids[start : start + 5]]
                event = {"choices": [{"index": 0, "text": "", "logprobs": {"tokens": tokens}}]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

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
    }
    orpheus = orpheus_settings.orpheus.model_copy(update=update)
    return build_engine(orpheus_settings.model_copy(update={"orpheus": orpheus}), "orpheus")


def test_streams_token_ids_back_from_the_server(server, orpheus_settings):
    url, backend, seen = server
    engine = openai_engine(orpheus_settings, url, "orpheus-test")
    loop = EngineLoop()
    request = SpeechRequest("job-0", "Hello from the server.", "leah", seed=4)
    try:
        speech = loop.run(engine.generate(request))
    finally:
        loop.run(engine.aclose())
        loop.close()
    sent = seen[0]
    assert sent["path"] == "/v1/completions" and sent["auth"] == "Bearer secret"
    assert sent["prompt"][:2] == [128259, 128000] and sent["prompt"][-1] == 128257
    direct = backend._generate(sent["prompt"], engine.sampling_for(request))
    assert speech.tokens == len(direct)
    assert speech.codes.to_tokens() == parse_tokens(direct).to_tokens()


def test_a_server_error_is_an_engine_error(server, orpheus_settings):
    url, _, _ = server
    engine = openai_engine(orpheus_settings, url, "no-such-model")
    loop = EngineLoop()
    try:
        with pytest.raises(EngineError, match="answered 404"):
            loop.run(engine.generate(SpeechRequest("job-1", "Hi.", "tara", seed=1)))
    finally:
        loop.run(engine.aclose())
        loop.close()
