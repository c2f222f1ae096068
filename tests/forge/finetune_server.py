"""A fine-tuning provider for tests: a real HTTP server on 127.0.0.1 that speaks OpenAI's and
Together's fine-tuning wire formats under one base URL (/v1).

OpenAI:   POST /v1/files (multipart, purpose=fine-tune), POST|GET /v1/fine_tuning/jobs,
          GET /v1/fine_tuning/jobs/{id}, POST /v1/fine_tuning/jobs/{id}/cancel, GET .../events
Together: POST /v1/files/upload (multipart: purpose, file_name, file_type, file),
          POST|GET /v1/fine-tunes, GET /v1/fine-tunes/{id}, POST .../cancel, GET .../events

A job moves one status further each time it is read. A base model whose name holds "fail"
ends failed with an error, one holding "slow" stays running. A wrong key is a 401 in the
provider's error format; `inject` answers the next matching request with something else
(a 429 with Retry-After, a 500...), either instead of doing it or after doing it (an answer
lost on the way back, as a timeout loses it).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-finetune-test"
OPENAI_STEPS = ["validating_files", "running", "succeeded"]
TOGETHER_STEPS = ["pending", "running", "completed"]


@dataclass
class FakeJob:
    provider: str
    body: dict[str, Any]
    id: str
    step: int = 0
    status: str = ""
    created_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def model(self) -> str:
        return self.body["model"]


@dataclass(frozen=True)
class Injected:
    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    performed: bool


class FinetuneServer:
    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[tuple[str, str]] = []
        self._injected: list[Injected] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def inject(
        self, method: str, path: str, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, *, performed: bool = False
    ) -> None:
        """Answer the next `method` request whose path matches the regex `path` with this;
        `performed`: carry the request out first, then answer this instead of its result."""
        error = body or {"error": {"message": f"injected {status}", "type": "server_error"}}
        with self._lock:
            self._injected.append(Injected(method, re.compile(path), status, error, headers or {}, performed))

    def __enter__(self) -> FinetuneServer:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the providers ---------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append((method, path))
            for injected in self._injected:
                if injected.method == method and injected.path.search(path):
                    self._injected.remove(injected)
                    if injected.performed:
                        self._route(method, path.split("?")[0], headers, body)
                    return injected.status, injected.body, injected.headers
            if headers.get("authorization") != f"Bearer {API_KEY}":
                return 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}, {}
            return self._route(method, path.split("?")[0], headers, body)

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method == "POST" and path in ("/v1/files", "/v1/files/upload"):
            return self._upload(headers, body, together=path.endswith("upload"))
        match = re.fullmatch(r"/v1/(fine_tuning/jobs|fine-tunes)(?:/([\w-]+))?(?:/(cancel|events))?", path)
        if match is None:
            return 404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error"}}, {}
        provider = "openai" if match.group(1) == "fine_tuning/jobs" else "together"
        job_id, action = match.group(2), match.group(3)
        if job_id is None and method == "POST":
            return self._create(provider, json.loads(body))
        if job_id is None and method == "GET":
            newest = [self._job(job) for job in reversed(self.jobs.values()) if job.provider == provider]
            return 200, ({"object": "list", "data": newest, "has_more": False} if provider == "openai" else {"data": newest}), {}
        job = self.jobs.get(job_id or "")
        if job is None or job.provider != provider:
            return 404, {"error": {"message": f"No such job: {job_id}", "type": "invalid_request_error"}}, {}
        if action == "cancel" and method == "POST":
            job.status = "cancelled" if provider == "openai" else "cancel_requested"
            return 200, self._job(job), {}
        if action == "events":
            return 200, self._events(job), {}
        self._advance(job)
        return 200, self._job(job), {}

    def _upload(self, headers: dict[str, str], body: bytes, together: bool) -> tuple[int, dict[str, Any], dict[str, str]]:
        message = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {headers.get('content-type', '')}\r\n\r\n".encode() + body)
        parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        if "file" not in parts or parts.get("purpose") is None or parts["purpose"].get_content().strip() != "fine-tune":
            return 400, {"error": {"message": "file and purpose=fine-tune are required", "type": "invalid_request_error"}}, {}
        if together and "file_name" not in parts:
            return 400, {"error": {"message": "file_name is required"}}, {}
        content = parts["file"].get_payload(decode=True)
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = {"content": content, "filename": parts["file"].get_filename()}
        return 200, {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()), "filename": parts["file"].get_filename(), "purpose": "fine-tune"}, {}

    def _create(self, provider: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if body.get("training_file") not in self.files:
            return 400, {"error": {"message": f"invalid training_file: {body.get('training_file')}", "type": "invalid_request_error"}}, {}
        job = FakeJob(provider, body, ("ftjob-" if provider == "openai" else "ft-") + uuid.uuid4().hex[:20])
        job.status = (OPENAI_STEPS if provider == "openai" else TOGETHER_STEPS)[0]
        self.jobs[job.id] = job
        return 200, self._job(job), {}

    def _advance(self, job: FakeJob) -> None:
        if job.status in ("succeeded", "failed", "completed", "error", "cancelled"):
            return
        if job.status == "cancel_requested":
            job.status = "cancelled"
            return
        steps = OPENAI_STEPS if job.provider == "openai" else TOGETHER_STEPS
        if "slow" in job.model and job.status == "running":
            return
        job.step = min(job.step + 1, len(steps) - 1)
        job.status = steps[job.step]
        if "fail" in job.model and job.step == len(steps) - 1:
            job.status = "failed" if job.provider == "openai" else "error"

    def _job(self, job: FakeJob) -> dict[str, Any]:
        done = job.status in ("succeeded", "completed")
        if job.provider == "openai":
            failed = job.status == "failed"
            return {
                "object": "fine_tuning.job",
                "id": job.id,
                "model": job.model,
                "created_at": job.created_at,
                "finished_at": int(time.time()) if done or failed else None,
                "fine_tuned_model": f"ft:{job.model}:vur:{job.body.get('suffix') or 'custom'}:{job.id[-8:]}" if done else None,
                "organization_id": "org-test",
                "result_files": [],
                "status": job.status,
                "validation_file": None,
                "training_file": job.body["training_file"],
                "method": job.body.get("method"),
                "trained_tokens": 4200 if done else None,
                "error": {"code": "invalid_training_file", "message": "The training file has too few examples", "param": "training_file"} if failed else None,
                "seed": 42,
            }
        return {
            "id": job.id,
            "status": job.status,
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:10:00.000Z",
            "model": job.model,
            "model_output_name": f"vur-test/{job.model.rsplit('/', 1)[-1]}-{job.body.get('suffix') or 'ft'}" if done else None,
            "training_file": job.body["training_file"],
            "n_epochs": job.body.get("n_epochs", 1),
            "learning_rate": job.body.get("learning_rate"),
            "training_method": job.body.get("training_method"),
            "token_count": 4200 if job.status != "pending" else None,
            "events": [],
        }

    def _events(self, job: FakeJob) -> dict[str, Any]:
        running = job.status not in ("validating_files", "pending", "queued")
        if job.provider == "openai":
            metrics = [{"object": "fine_tuning.job.event", "id": f"ftevent-{n}", "created_at": job.created_at + n, "level": "info", "message": f"Step {n}/20", "type": "metrics",
                        "data": {"step": n, "train_loss": round(1.0 / n, 4), "total_steps": 20, "train_mean_token_accuracy": 0.8}} for n in (10, 20) if running]
            return {"object": "list", "data": list(reversed(metrics)), "has_more": False}
        events = [{"object": "fine-tune-event", "created_at": "2026-01-01T00:00:00Z", "message": "Fine tune request created", "type": "job_pending", "level": "info", "step": None}]
        if running:
            events.append({"object": "fine-tune-event", "created_at": "2026-01-01T00:05:00Z", "message": "Epoch completed, at step 12", "type": "epoch_complete", "level": "info", "step": 12, "total_steps": 24})
        if job.status == "error":
            events.append({"object": "fine-tune-event", "created_at": "2026-01-01T00:06:00Z", "message": "Training data has an invalid line 3", "type": "job_error", "level": "error", "step": None})
        return {"data": events}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, payload, headers = server.handle(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *_: Any) -> None:
                pass

        return Handler
