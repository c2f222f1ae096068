"""A stand-in for an LLM provider in tests: a real HTTP server on 127.0.0.1 that speaks
OpenAI's chat completions wire format (POST /v1/chat/completions), including its error
bodies, 429 with Retry-After, 5xx and answers that come too late.

Answers are scripted per model name, so one server can serve many tests (each uses a
model of its own): `server.script("m-1", rate_limited(1), ok())`. The last answer of a
script repeats; a model without a script gets `ok()`. `ok()` answers a valid item built
from the prompt, so that it is grounded in the segment it was asked about.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    # The assistant message's content; None: a valid item made from the prompt.
    content: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (past the client's timeout: a hang)
    error: str = ""  # the error message of a non-200 answer


def ok(delay: float = 0.0, **fields: str) -> Reply:
    """A valid item; `fields` replace the generated ones (an empty string drops one)."""
    return Reply(delay=delay, content=json.dumps(fields) if fields else None)


def rate_limited(retry_after: float) -> Reply:
    return Reply(status=429, headers={"Retry-After": f"{retry_after:g}"}, error="Rate limit reached for requests")


def server_error() -> Reply:
    return Reply(status=500, error="The server had an error while processing your request")


def hang(seconds: float) -> Reply:
    return Reply(delay=seconds)


def not_json() -> Reply:
    return Reply(content="Claro! Aqui está o item pedido: instrução, resposta ideal e explicação.")


def missing_fields() -> Reply:
    return Reply(content=json.dumps({"instruction": "Explique o texto."}))


def unauthorized() -> Reply:
    return Reply(status=401, error="Incorrect API key provided")


@dataclass(frozen=True)
class Call:
    at: float  # time.monotonic() when the request arrived
    model: str
    authorization: str
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        return next(m["content"] for m in self.body["messages"] if m["role"] == "user")


def item_for(prompt: str) -> dict[str, str]:
    """A valid item grounded in the prompt (which holds the segment)."""
    return {
        "instruction": "Responda à pergunta com base no texto fornecido.",
        "input_text": f"O que diz este trecho? {prompt[:200]}",
        "ideal_response": f"Segundo o texto: {prompt}",
        "bad_response": "Não há nenhuma informação sobre isso e o assunto não importa.",
        "explanation": "A resposta ideal usa o próprio texto; a ruim o ignora.",
    }


class ProviderServer:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.request_queue_size = 128
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, model: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[model] = list(replies)

    def calls_for(self, model: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.model == model]

    def __enter__(self) -> ProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._release.set()  # let hanging answers go
        self._server.shutdown()
        self._server.server_close()

    def _next(self, call: Call) -> Reply:
        with self._lock:
            self.calls.append(call)
            script = self._scripts.get(call.model)
            if not script:
                return Reply()
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"Unknown path {self.path}", "type": "invalid_request_error", "param": None, "code": None}})
                body = json.loads(raw)
                call = Call(time.monotonic(), body.get("model", ""), self.headers.get("Authorization", ""), body)
                reply = server._next(call)
                if reply.delay and server._release.wait(reply.delay):
                    return  # the server is closing
                if reply.status != 200:
                    error = {"message": reply.error, "type": "requests" if reply.status == 429 else "server_error", "param": None, "code": None}
                    return self._send(reply.status, {"error": error}, reply.headers)
                content = reply.content if reply.content is not None else json.dumps(item_for(call.prompt), ensure_ascii=False)
                self._send(200, completion(call.model, content), reply.headers)

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in {**(headers or {}), "Content-Type": "application/json", "Content-Length": str(len(data))}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting (the timeout tests)

        return Handler


def completion(model: str, content: str) -> dict[str, Any]:
    """OpenAI's chat completion object."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200},
        "system_fingerprint": "fp_test",
    }
