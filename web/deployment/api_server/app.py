"""An HTTP API for this package's fine-tuned adapter (FR4.3.2), with an OpenAI-compatible route.

    pip install -r api_server/requirements.txt
    API_KEYS=change-me python api_server/app.py            # http://127.0.0.1:8000

Routes: `POST /api/v1/chat` (a prompt in, the answer out; `"stream": true` for Server-Sent Events),
`GET /api/v1/health` (no key), `GET /api/v1/model-info` (the training job, its configuration and
metrics), and OpenAI's `POST /v1/chat/completions` (streaming too) and `GET /v1/models`, so any
OpenAI client can call the adapter with `base_url=http://host:8000/v1`. Every other route needs
`Authorization: Bearer <key>` (or `X-API-Key`), one of API_KEYS. Settings (environment):

    API_KEYS                comma-separated keys (required)
    MAX_PROMPT_CHARS        longest prompt, all messages together (4000)
    MAX_TOKENS_LIMIT        the most tokens one answer may ask for (1024); DEFAULT_MAX_TOKENS 256
    RATE_LIMIT_PER_MINUTE   requests per key per rolling minute (60)
    BASE_MODEL              the base model (default: ./base_model when bundled, else adapter_config's)
    PACKAGE_DIR             the unzipped package (default: this file's parent folder)
    MODEL_ID                the model's name in answers and for OpenAI's `model` (the job's name)
    LOAD_IN_4BIT            "true": 4-bit NF4 weights (CUDA + bitsandbytes)
    LOG_CONTENT             "true": request logs also carry prompts and answers (off: sizes only)
    HOST, PORT              where `python api_server/app.py` listens (0.0.0.0, 8000)

Generation runs one request at a time (one model in memory); for many concurrent users or many
adapters on one base, see deploy_guide.md (vLLM)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PACKAGE = Path(os.environ.get("PACKAGE_DIR") or Path(__file__).resolve().parent.parent)
log = logging.getLogger("api_server")


class Settings:
    def __init__(self, env: dict[str, str]) -> None:
        self.keys = [k.strip() for k in env.get("API_KEYS", env.get("API_KEY", "")).split(",") if k.strip()]
        self.max_prompt_chars = int(env.get("MAX_PROMPT_CHARS", "4000"))
        self.max_tokens_limit = int(env.get("MAX_TOKENS_LIMIT", "1024"))
        self.default_max_tokens = min(int(env.get("DEFAULT_MAX_TOKENS", "256")), self.max_tokens_limit)
        self.rate_limit = int(env.get("RATE_LIMIT_PER_MINUTE", "60"))
        self.load_in_4bit = env.get("LOAD_IN_4BIT", "").lower() in ("1", "true", "yes")
        self.log_content = env.get("LOG_CONTENT", "").lower() in ("1", "true", "yes")
        self.base_model = env.get("BASE_MODEL", "")
        self.model_id = env.get("MODEL_ID", "")


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


# --- the model -------------------------------------------------------------------------------

class Model:
    """The base model with the adapter, loaded once; `lock` keeps one generation at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings, self.lock = settings, threading.Lock()
        self.summary = _json(PACKAGE / "training_summary.json")
        self.adapter_config = _json(PACKAGE / "adapters" / "adapter_config.json")
        bundled = PACKAGE / "base_model"
        self.base = settings.base_model or (str(bundled) if bundled.is_dir()
                                            else self.adapter_config.get("base_model_name_or_path", ""))
        self.id = settings.model_id or slug(str(self.summary.get("name") or "")) or "lora-adapter"
        self.loaded_in_s = 0.0

    def load(self) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        if not self.base:
            raise SystemExit("the adapter names no base model: set BASE_MODEL")
        cuda = torch.cuda.is_available()
        options: dict[str, Any] = {"dtype": torch.bfloat16 if cuda else torch.float32}
        if cuda:
            options["device_map"] = "auto"
        if self.settings.load_in_4bit:
            from transformers import BitsAndBytesConfig

            options["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=options["dtype"])
        adapters = PACKAGE / "adapters"
        self.tokenizer = AutoTokenizer.from_pretrained(
            adapters if (adapters / "tokenizer_config.json").exists() else self.base)
        base = AutoModelForCausalLM.from_pretrained(self.base, **options)
        self.model = PeftModel.from_pretrained(base, adapters).eval()
        self.device = str(self.model.device)
        self.loaded_in_s = time.perf_counter() - started

    def prompt_ids(self, messages: list[dict[str, str]]) -> Any:
        if not any(m["role"] == "system" for m in messages) and self.summary.get("system_prompt"):
            messages = [{"role": "system", "content": self.summary["system_prompt"]}, *messages]
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n"
        return self.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(self.model.device)


class Generation:
    """One answer, generated in a thread and read as it comes (TextIteratorStreamer); stops at a
    stop sequence, at `max_tokens`, or when the reader goes away."""

    def __init__(self, model: Model, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                 top_p: float, stop: list[str]) -> None:
        self.model, self.stop, self.max_tokens = model, stop, max_tokens
        self.cancelled = threading.Event()
        self.prompt_tokens = self.completion_tokens = 0
        self.finish_reason, self.stopped = "stop", False
        self.messages, self.temperature, self.top_p = messages, temperature, top_p

    def __iter__(self) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        cancelled = self.cancelled

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool,
                                  device=input_ids.device)

        m = self.model
        with m.lock:
            inputs = m.prompt_ids(self.messages)
            self.prompt_tokens = int(inputs["input_ids"].shape[-1])
            streamer = TextIteratorStreamer(m.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
            sampling = ({"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}
                        if self.temperature > 0 else {"do_sample": False})
            pad = m.tokenizer.pad_token_id if m.tokenizer.pad_token_id is not None else m.tokenizer.eos_token_id
            result: dict[str, Any] = {}

            def run() -> None:
                try:
                    with torch.no_grad():
                        result["output"] = m.model.generate(
                            **inputs, max_new_tokens=self.max_tokens, pad_token_id=pad, streamer=streamer,
                            stopping_criteria=StoppingCriteriaList([Cancelled()]), **sampling)
                except Exception as exc:  # noqa: BLE001 - handed to the reader below
                    result["error"] = exc
                    streamer.end()

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            try:
                yield from self._until_stop(streamer)
            finally:
                cancelled.set()
                worker.join()
            if "error" in result:
                raise result["error"]
            if "output" in result:
                self.completion_tokens = int(result["output"].shape[-1]) - self.prompt_tokens
            if not self.stopped and self.completion_tokens >= self.max_tokens:
                self.finish_reason = "length"

    def _until_stop(self, pieces: Iterator[str]) -> Iterator[str]:
        """The pieces up to the first stop sequence; a tail that could begin one is held back."""
        held, keep = "", max((len(s) for s in self.stop), default=1) - 1
        for piece in pieces:
            held += piece
            cut = min((i for s in self.stop if (i := held.find(s)) >= 0), default=-1)
            if cut >= 0:
                if held[:cut]:
                    yield held[:cut]
                self.stopped = True
                return
            if len(held) > keep:
                yield held[:len(held) - keep] if keep else held
                held = held[len(held) - keep:] if keep else ""
        if held:
            yield held


def slug(name: str) -> str:
    """A job name as a model id: `Advisor tone v3` → `advisor-tone-v3`."""
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --- requests ----------------------------------------------------------------------------------

class ChatRequest(BaseModel):
    prompt: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    system: str | None = None
    stream: bool = False


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    n: int = Field(default=1, ge=1, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None


# --- the app -----------------------------------------------------------------------------------

def create_app(settings: Settings | None = None, model: Model | None = None) -> FastAPI:
    settings = settings or Settings(dict(os.environ))
    if not settings.keys:
        raise SystemExit("set API_KEYS (one or more comma-separated keys) before starting the server")
    model = model or Model(settings)
    windows: dict[str, deque[float]] = {}
    windows_lock = threading.Lock()
    started = time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        model.load()
        log.info(json.dumps({"event": "model_loaded", "model": model.id, "base": model.base, "device": model.device,
                             "seconds": round(model.loaded_in_s, 2)}))
        yield

    app = FastAPI(title=f"{model.id} API", version=str(model.summary.get("job_id", "1")), lifespan=lifespan)

    def caller(request: Request) -> str:
        """The key's short id (never the key itself), after the key and the rate limit are checked."""
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
        if not given or not any(hmac.compare_digest(given.encode(), k.encode()) for k in settings.keys):
            raise ApiError(401, "Missing or invalid API key: send Authorization: Bearer <key>", "invalid_api_key",
                           {"WWW-Authenticate": "Bearer"})
        key_id = hashlib.sha256(given.encode()).hexdigest()[:8]
        request.state.key = key_id
        now = time.monotonic()
        with windows_lock:
            window = windows.setdefault(key_id, deque())
            while window and now - window[0] >= 60:
                window.popleft()
            if len(window) >= settings.rate_limit:
                wait = max(1, int(60 - (now - window[0])) + 1)
                raise ApiError(429, f"Rate limit reached: {settings.rate_limit} requests per minute per key;"
                               f" retry in {wait} s", "rate_limit_exceeded", {"Retry-After": str(wait)})
            window.append(now)
        return key_id

    def check(request: Request, messages: list[dict[str, str]], asked: int | None) -> int:
        size = sum(len(m["content"]) for m in messages)
        request.state.prompt_chars = size
        if size > settings.max_prompt_chars:
            raise ApiError(400, f"The prompt is {size:,} characters; this server takes at most"
                           f" {settings.max_prompt_chars:,} (MAX_PROMPT_CHARS)", "prompt_too_long")
        if not any(m["role"] == "user" and m["content"].strip() for m in messages):
            raise ApiError(400, "Send a non-empty user message", "empty_prompt")
        if asked is not None and asked > settings.max_tokens_limit:
            raise ApiError(400, f"max_tokens is {asked}; this server allows at most {settings.max_tokens_limit}"
                           " (MAX_TOKENS_LIMIT)", "max_tokens_too_large")
        return asked or settings.default_max_tokens

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        place = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return error_response(request, 400, f"{place}: {first['msg']}", "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, str(exc.detail), "not_found" if exc.status_code == 404
                              else "http_error")

    @app.middleware("http")
    async def request_log(request: Request, call_next: Any) -> Any:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id, begun = request_id, time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        record = {"event": "request", "id": request_id, "method": request.method, "path": request.url.path,
                  "status": response.status_code, "ms": round((time.perf_counter() - begun) * 1000, 1),
                  "key": getattr(request.state, "key", None),
                  "prompt_chars": getattr(request.state, "prompt_chars", None)}
        log.info(json.dumps(record))
        return response

    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": model.id, "device": model.device, "uptime_s": round(time.time() - started),
                "load_seconds": round(model.loaded_in_s, 2)}

    @app.get("/api/v1/model-info")
    def model_info(key: str = Depends(caller)) -> dict[str, Any]:
        s, a = model.summary, model.adapter_config
        return {"model": model.id, "job_id": s.get("job_id"), "job_name": s.get("name"),
                "version": s.get("packaged_at"), "trained_by": s.get("created_by"), "base_model": model.base,
                "adapter": {"r": a.get("r"), "lora_alpha": a.get("lora_alpha"),
                            "target_modules": a.get("target_modules"), "peft_type": a.get("peft_type")},
                "preset": s.get("preset"), "hyperparameters": s.get("hyperparameters"),
                "training_file": s.get("training_file"), "conversations": s.get("conversations"),
                "metrics": s.get("final_metrics") or {}, "device": model.device,
                "limits": {"max_prompt_chars": settings.max_prompt_chars,
                           "max_tokens": settings.max_tokens_limit,
                           "rate_limit_per_minute": settings.rate_limit}}

    @app.post("/api/v1/chat", response_model=None)
    def chat(body: ChatRequest, request: Request, key: str = Depends(caller)) -> Any:
        messages = ([{"role": "system", "content": body.system}] if body.system else []) + [
            {"role": "user", "content": body.prompt}]
        max_tokens = check(request, messages, body.max_tokens)
        gen = Generation(model, messages, max_tokens, body.temperature, body.top_p, [])
        begun = time.perf_counter()
        if body.stream:
            def events() -> Iterator[str]:
                try:
                    for piece in gen:
                        yield sse({"text": piece}, "token")
                    yield sse({"usage": usage(gen), "finish_reason": gen.finish_reason,
                               "latency_ms": round((time.perf_counter() - begun) * 1000)}, "done")
                except Exception as exc:  # noqa: BLE001 - the stream has begun: the error goes in it
                    yield sse({"error": str(exc)}, "error")
                finally:
                    logged(request, body.prompt, None, gen)
            return StreamingResponse(events(), media_type="text/event-stream", headers=NO_BUFFERING)
        text = "".join(gen).strip()
        logged(request, body.prompt, text, gen)
        return {"response": text, "model": model.id, "finish_reason": gen.finish_reason, "usage": usage(gen),
                "latency_ms": round((time.perf_counter() - begun) * 1000)}

    @app.get("/v1/models")
    def models(key: str = Depends(caller)) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model.id, "object": "model", "created": int(started),
                                            "owned_by": "lora-pipeline", "root": model.base}]}

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(body: ChatCompletionRequest, request: Request, key: str = Depends(caller)) -> Any:
        if body.model and body.model != model.id:
            raise ApiError(404, f"The model {body.model!r} does not exist here; this server serves {model.id!r}",
                           "model_not_found")
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in body.messages]
        max_tokens = check(request, messages, body.max_completion_tokens or body.max_tokens)
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        gen = Generation(model, messages, max_tokens, body.temperature, body.top_p, stop)
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        head = {"id": completion_id, "created": created, "model": model.id}
        if body.stream:
            def chunks() -> Iterator[str]:
                def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                    return sse({**head, "object": "chat.completion.chunk",
                                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                try:
                    yield chunk({"role": "assistant", "content": ""})
                    for piece in gen:
                        yield chunk({"content": piece})
                    yield chunk({}, gen.finish_reason)
                    if body.stream_options and body.stream_options.include_usage:
                        yield sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage(gen)})
                    yield "data: [DONE]\n\n"
                except Exception as exc:  # noqa: BLE001 - the stream has begun: the error goes in it
                    yield sse({"error": {"message": str(exc), "type": "server_error"}})
                finally:
                    logged(request, messages[-1]["content"], None, gen)
            return StreamingResponse(chunks(), media_type="text/event-stream", headers=NO_BUFFERING)
        text = "".join(gen).strip()
        logged(request, messages[-1]["content"], text, gen)
        return {**head, "object": "chat.completion", "usage": usage(gen),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": gen.finish_reason}]}

    def logged(request: Request, prompt: str, answer: str | None, gen: Generation) -> None:
        record: dict[str, Any] = {"event": "generation", "id": request.state.request_id, "key": request.state.key,
                                  "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
                                  "finish_reason": gen.finish_reason}
        if settings.log_content:
            record |= {"prompt": prompt, "answer": answer}
        log.info(json.dumps(record, ensure_ascii=False))

    return app


NO_BUFFERING = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: dict[str, Any], event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def usage(gen: Generation) -> dict[str, int]:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
            "total_tokens": gen.prompt_tokens + gen.completion_tokens}


def error_response(request: Request, status: int, message: str, code: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI's error shape on /v1, `{"detail", "error"}` elsewhere."""
    if request.url.path.startswith("/v1/"):
        kind = {401: "authentication_error", 429: "rate_limit_error", 404: "invalid_request_error"}.get(
            status, "invalid_request_error" if status < 500 else "server_error")
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    else:
        body = {"detail": message, "error": code}
    return JSONResponse(body, status_code=status, headers=headers)


def main() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    uvicorn.run(create_app(), host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8000")),
                log_level="warning", workers=1)


if __name__ == "__main__":
    main()
