"""Client of an OpenAI-compatible ``/v1/completions`` server (``vllm serve``, llama.cpp).

Prompts go as token ids and the generated ids come back in the stream: vLLM sends them in
``choices[0].token_ids`` when asked with ``return_token_ids`` (its extension of the protocol,
``CompletionRequest`` in ``vllm/entrypoints/openai/completion/protocol.py``), llama.cpp in a
top-level ``tokens`` with ``return_tokens``. Each server ignores the other's field. The frame
rule is asked for through ``vllm_xargs``; it applies where the server was started with
``--logits-processors shared.speech.vllm_logits:FrameSlots``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from shared.infra.settings import OrpheusSettings
from shared.speech.codec import END_OF_SPEECH
from shared.speech.engine import EngineError
from shared.speech.orpheus import IdsListener, Sampling
from shared.speech.vllm_backend import BULK_PRIORITY, FRAME_ARG, URGENT_PRIORITY


def completion_body(model: str, prompt_ids: list[int], sampling: Sampling) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": prompt_ids,
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "repetition_penalty": sampling.repetition_penalty,
        "seed": sampling.seed,
        "stop_token_ids": [END_OF_SPEECH],
        "stream": True,
        "return_token_ids": True,  # vLLM
        "return_tokens": True,  # llama.cpp
        "vllm_xargs": {FRAME_ARG: True},
        # vLLM's, heeded where the server runs with --scheduling-policy priority
        "priority": URGENT_PRIORITY if sampling.urgent else BULK_PRIORITY,
    }


def ids_from_event(event: dict[str, Any]) -> list[int]:
    """Token ids generated in one streamed completion event (never the prompt's).

    An error the server sends inside the stream (vLLM: ``data: {"error": {...}}`` once the
    response has started) raises EngineError: the chunk fails instead of ending short.
    """
    if "error" in event:
        error = event["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise EngineError(f"completion server failed mid-stream: {message}")
    choice = (event.get("choices") or [{}])[0]
    if choice.get("finish_reason") == "error":
        raise EngineError("completion server failed mid-stream (finish_reason error)")
    ids = choice.get("token_ids")
    if ids is None:
        ids = event.get("tokens") or []
    return [int(token) for token in ids]


class OpenAIBackend:
    def __init__(self, settings: OrpheusSettings, model: str) -> None:
        headers = (
            {"Authorization": f"Bearer {settings.openai_api_key}"}
            if settings.openai_api_key
            else {}
        )
        self.model = settings.openai_model or model
        self.client = httpx.AsyncClient(
            base_url=settings.openai_url, headers=headers, timeout=settings.request_timeout_s
        )

    async def generate_ids(
        self,
        request_id: str,
        prompt_ids: list[int],
        sampling: Sampling,
        on_ids: IdsListener | None = None,
    ) -> list[int]:
        body = completion_body(self.model, prompt_ids, sampling)
        async with self.client.stream(
            "POST", "/completions", json=body, headers={"X-Request-Id": request_id}
        ) as response:
            if response.status_code != 200:
                detail = (await response.aread()).decode(errors="replace")[:200]
                raise EngineError(f"completion server answered {response.status_code}: {detail}")
            return await _read_stream(response, on_ids)

    async def aclose(self) -> None:
        await self.client.aclose()

    def dead(self) -> bool:
        return False  # the server's failures are the requests' errors, not this process's


async def _read_stream(response: httpx.Response, on_ids: IdsListener | None) -> list[int]:
    """The ids of a server-sent event stream, which must end with ``[DONE]``; each event's to
    ``on_ids`` as it comes."""
    ids: list[int] = []
    async for line in response.aiter_lines():
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            if not ids:  # even a chunk that stops at once sends its end-of-speech id
                raise EngineError(
                    "completion server sent no token ids: it must honour return_token_ids "
                    "(vLLM) or return_tokens (llama.cpp)"
                )
            return ids
        if data:
            new = ids_from_event(json.loads(data))
            ids.extend(new)
            if on_ids is not None and new:
                on_ids(new)
    raise EngineError("completion stream ended without [DONE]: the server hung up mid-chunk")
