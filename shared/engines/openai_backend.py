"""Client of an OpenAI-compatible ``/v1/completions`` server (``vllm serve``, llama.cpp).

Prompts go as token ids; the stream's tokens come back as ids: vLLM sends them as
``token_id:N`` strings with ``return_tokens_as_token_ids``, llama.cpp in ``tokens``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from shared.codec import END_OF_SPEECH
from shared.engines.base import EngineError
from shared.engines.orpheus import Sampling
from shared.settings import OrpheusSettings


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
        "logprobs": 0,
        "return_tokens_as_token_ids": True,
        "return_tokens": True,
    }


def ids_from_event(event: dict[str, Any]) -> list[int]:
    """Token ids carried by one streamed completion event."""
    choice = (event.get("choices") or [{}])[0]
    if choice.get("token_ids"):
        return [int(t) for t in choice["token_ids"]]
    tokens = (choice.get("logprobs") or {}).get("tokens") or event.get("tokens") or []
    return [int(str(t).removeprefix("token_id:")) for t in tokens]


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
        self, request_id: str, prompt_ids: list[int], sampling: Sampling
    ) -> list[int]:
        ids: list[int] = []
        body = completion_body(self.model, prompt_ids, sampling)
        async with self.client.stream(
            "POST", "/completions", json=body, headers={"X-Request-Id": request_id}
        ) as response:
            if response.status_code != 200:
                detail = (await response.aread()).decode(errors="replace")[:200]
                raise EngineError(f"completion server answered {response.status_code}: {detail}")
            async for line in response.aiter_lines():
                data = line.removeprefix("data:").strip()
                if not data or data == "[DONE]":
                    continue
                ids.extend(ids_from_event(json.loads(data)))
        return ids

    async def aclose(self) -> None:
        await self.client.aclose()
