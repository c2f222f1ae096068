"""LLM providers for generation. Every provider is reached with the OpenAI client: OpenAI
itself, Together and Gemini through their OpenAI-compatible endpoints, and any other
OpenAI-compatible server (vLLM, Ollama, llama.cpp) by its base URL.

Retries are ours, not the client's (it is built with max_retries=0): a 429, a 5xx, a
timeout, a lost connection or an answer that is not the JSON item asked for is tried
again after a doubling backoff, or after the provider's Retry-After. A 401, 403 or 404
cannot get better by waiting: it stops the whole generation (`fatal`).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import pydantic_core

from vur.settings import Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

PROVIDERS = ("openai", "gemini", "together", "openai_compatible")
# Used when generation_config names no model (openai_compatible always needs one).
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "gemini": "gemini-2.0-flash", "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo"}
ITEM_FIELDS = ("instruction", "input_text", "ideal_response", "bad_response", "explanation")
REQUIRED_FIELDS = ("instruction", "ideal_response", "bad_response")
MAX_FIELD_CHARS = 20_000
# A Retry-After longer than this is cut to it: a provider cannot park a job for hours.
MAX_RETRY_AFTER_SECONDS = 120.0
# Placeholder for servers that take no key (Ollama, a local vLLM): the client insists on one.
NO_KEY = "no-key"

OUTPUT_INSTRUCTIONS = (
    "Answer with one JSON object and nothing else, with these string fields: "
    '"instruction" (a task or question for the model being trained), '
    '"input_text" (the input the task refers to, or ""), '
    '"ideal_response" (the best answer, grounded in the given text), '
    '"bad_response" (a plausible but wrong or poor answer) and '
    '"explanation" (why the ideal response is better). '
    "Write them in the language of the given text."
)


def base_url(settings: Settings, provider: str, generation_config: dict[str, Any]) -> str:
    if provider == "openai_compatible":
        return generation_config["base_url"]
    return {"openai": settings.forge_openai_base_url, "together": settings.forge_together_base_url, "gemini": settings.forge_gemini_base_url}[provider]


def settings_key(settings: Settings, provider: str) -> str:
    return {"openai": settings.forge_openai_api_key, "together": settings.forge_together_api_key, "gemini": settings.forge_gemini_api_key}.get(provider, "")


@dataclass(frozen=True)
class CallPolicy:
    timeout: float
    max_retries: int
    backoff: float

    @classmethod
    def of(cls, settings: Settings) -> CallPolicy:
        return cls(settings.forge_provider_timeout_seconds, settings.forge_provider_max_retries, settings.forge_provider_backoff_seconds)


def make_client(url: str, api_key: str, policy: CallPolicy) -> AsyncOpenAI:
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=api_key or NO_KEY, base_url=url, max_retries=0, timeout=policy.timeout)


class ProviderFailure(Exception):
    """A call that did not give an item. `fatal`: no other call can succeed either."""

    def __init__(self, reason: str, *, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal


class MalformedAnswer(ValueError):
    pass


@dataclass(frozen=True)
class Answer:
    fields: dict[str, str]
    meta: dict[str, Any]


def parse_item(content: str | None) -> dict[str, str]:
    """The item in an answer's content, checked: a JSON object whose fields are strings,
    the required ones not blank. Raises MalformedAnswer saying what is wrong."""
    text = (content or "").strip()
    # Some servers wrap JSON in a Markdown fence even when asked for a JSON object.
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        data = pydantic_core.from_json(text)  # a provider's answer nested past the parser's limit is malformed too
    except ValueError:
        raise MalformedAnswer(f"the answer is not JSON: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise MalformedAnswer(f"the answer is JSON but not an object: {type(data).__name__}")
    wrong = [name for name in ITEM_FIELDS if name in data and not isinstance(data[name], str)]
    missing = [name for name in REQUIRED_FIELDS if not (isinstance(data.get(name), str) and data[name].strip())]
    if wrong or missing:
        raise MalformedAnswer("; ".join(part for part in (f"missing or blank: {missing}" if missing else "", f"not strings: {wrong}" if wrong else "") if part))
    too_long = [name for name in ITEM_FIELDS if len(data.get(name, "")) > MAX_FIELD_CHARS]
    if too_long:
        raise MalformedAnswer(f"longer than {MAX_FIELD_CHARS} characters: {too_long}")
    return {name: data.get(name, "").strip() for name in ITEM_FIELDS}


def retry_after(headers: Any) -> float | None:
    """Seconds the provider asks us to wait: retry-after-ms (OpenAI), or Retry-After in
    seconds or as an HTTP date."""
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


async def generate_item(client: AsyncOpenAI, model: str, messages: list[dict[str, str]], params: dict[str, Any], policy: CallPolicy) -> Answer:
    """One item from the provider, retried as the module says; ProviderFailure otherwise."""
    import openai

    started = time.perf_counter()
    for attempt in range(policy.max_retries + 1):
        wait = policy.backoff * 2**attempt * (0.5 + random.random() / 2)
        try:
            response = await client.chat.completions.create(model=model, messages=messages, response_format={"type": "json_object"}, **params)  # type: ignore[arg-type]
            fields = parse_item(response.choices[0].message.content if response.choices else None)
        except openai.RateLimitError as exc:
            asked = retry_after(exc.response.headers)
            wait = min(asked, MAX_RETRY_AFTER_SECONDS) if asked is not None else wait
            reason = "rate limited by the provider (429)"
        except openai.InternalServerError as exc:
            reason = f"provider error {exc.status_code}"
        except openai.APIStatusError as exc:
            # Any other 4xx: the request itself is refused; waiting will not change that.
            said = exc.body.get("message") if isinstance(exc.body, dict) else None
            raise ProviderFailure(f"the provider refused the request ({exc.status_code}): {said or exc.message}", fatal=exc.status_code in (401, 403, 404)) from None
        except openai.APITimeoutError:
            reason = f"no answer within {policy.timeout:g} s"
        except openai.APIConnectionError as exc:
            reason = f"could not reach the provider: {exc.__cause__ or exc}"
        except MalformedAnswer as exc:
            reason = f"malformed answer: {exc}"
        else:
            usage = response.usage
            meta = {
                "model": response.model or model,
                "attempts": attempt + 1,
                "latency_ms": round((time.perf_counter() - started) * 1000),
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
            }
            return Answer(fields, meta)
        if attempt == policy.max_retries:
            raise ProviderFailure(f"{reason} (after {attempt + 1} attempts)")
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")
