"""The ``vllm serve`` client against vLLM 0.33's own protocol objects: the request body Lyre
sends parsed by vLLM's ``CompletionRequest``, and streams serialised exactly as vLLM's
completion server writes them (``vllm/entrypoints/openai/completion/serving.py``), served
from loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from vllm.entrypoints.openai.completion.protocol import (
    CompletionRequest,
    CompletionResponseStreamChoice,
    CompletionStreamResponse,
)
from vllm.entrypoints.serve.exception_handling.error_response import create_error_response
from vllm.v1.worker.gpu.sample.logits_processor import (
    build_custom_logits_processors_params_validator,
)

from shared.infra.settings import OrpheusSettings
from shared.speech.codec import END_OF_SPEECH, audio_token
from shared.speech.engine import EngineError
from shared.speech.openai_backend import OpenAIBackend, completion_body
from shared.speech.orpheus import Sampling
from shared.speech.vllm_backend import FRAME_ARG, FRAME_PROCESSOR

PROMPT = [128259, 128000, 83, 84, 128009, 128260, 128261, 128257]
GENERATED = [audio_token(i % 7, (37 * i) % 4096) for i in range(14)] + [END_OF_SPEECH]
SAMPLING = Sampling(max_tokens=70, temperature=0.6, top_p=0.9, repetition_penalty=1.1, seed=5)


def vllm_stream(request: CompletionRequest, ids: list[int], error_after: int | None = None):
    """The ``data:`` lines vLLM's completion server writes for ``ids``, three at a time."""
    for n, start in enumerate(range(0, len(ids), 3)):
        if error_after is not None and n == error_after:
            error = create_error_response("Internal server error", "InternalServerError")
            yield f"data: {json.dumps(error.model_dump())}\n\n"
            break
        delta = ids[start : start + 3]
        last = start + 3 >= len(ids)
        choice = CompletionResponseStreamChoice(
            index=0,
            text="",
            logprobs=None,
            finish_reason="stop" if last else None,
            stop_reason=END_OF_SPEECH if last else None,
            prompt_token_ids=request.prompt if n == 0 and request.return_token_ids else None,
            token_ids=delta if request.return_token_ids else None,
        )
        chunk = CompletionStreamResponse(
            id="cmpl-1", created=1, model=request.model, choices=[choice]
        )
        yield f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n"
    yield "data: [DONE]\n\n"


@pytest.fixture()
def server():
    seen: list[CompletionRequest] = []

    class Completions(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request = CompletionRequest(**body)  # vLLM's own parsing of Lyre's body
            seen.append(request)
            error_after = 2 if request.model == "fails-mid-stream" else None
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for line in vllm_stream(request, GENERATED, error_after):
                self.wfile.write(line.encode())

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Completions)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1", seen
    httpd.shutdown()
    httpd.server_close()


def generate(url: str, model: str) -> list[int]:
    async def run() -> list[int]:
        backend = OpenAIBackend(OrpheusSettings(openai_url=url), model=model)
        try:
            return await backend.generate_ids("job-3", PROMPT, SAMPLING)
        finally:
            await backend.aclose()

    return asyncio.run(run())


def test_vllm_parses_lyres_request_into_the_sampling_lyre_means():
    request = CompletionRequest(**completion_body("orpheus", PROMPT, SAMPLING))
    params = request.to_sampling_params(max_tokens=request.max_tokens)
    assert request.return_token_ids and request.stream and request.prompt == PROMPT
    assert (params.max_tokens, params.seed, params.stop_token_ids) == (70, 5, [END_OF_SPEECH])
    assert (params.temperature, params.top_p, params.repetition_penalty) == (0.6, 0.9, 1.1)
    assert params.extra_args[FRAME_ARG]  # a server started with FrameSlots applies the rule
    build_custom_logits_processors_params_validator([FRAME_PROCESSOR])(params)


def test_the_client_reads_the_ids_from_vllms_stream(server):
    url, seen = server
    assert generate(url, "orpheus") == GENERATED  # the prompt's ids, also sent, are not taken
    assert seen[0].prompt == PROMPT


def test_an_error_vllm_sends_inside_the_stream_fails_the_chunk(server):
    url, _ = server
    with pytest.raises(EngineError, match="Internal server error"):
        generate(url, "fails-mid-stream")
