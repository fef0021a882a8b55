"""A local stand-in for an OpenAI-compatible chat-completions endpoint acting as the model judge
(POST /v1/chat/completions, as OpenAI and vLLM serve it): it answers the judge's requests with JSON in
the schema the request's `response_format` gives, scoring each reply by a documented deterministic
rule, and can be told to answer 429 (with Retry-After), 500, or malformed JSON for the next requests.
Every request is recorded (headers and body).

The rule (`score`), per reply and characteristic, from the reply's text alone:
- words = the runs of letters (and apostrophes); length points: no word 1, 1-4 words 2, 5-14 words 3,
  15-39 words 4, 40 or more 5;
- +1 when the text holds one of the characteristic's keywords (KEYWORDS; a characteristic not listed
  has none);
- -1 when one word makes up more than half of four or more words (repetition);
- clamped to 1-5.
An empty reply (shown to the judge as "(empty reply)") has no word.
So a reply's scores do not depend on which label (A or B) it was shown under: a test can check that
the scores stored for the baseline are the rule applied to the baseline's text."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes import LoopbackHttpServer

KEYWORDS = {
    "empathy": ("feel", "understand", "worried", "sorry", "hear", "anxious"),
    "clarity": ("simple", "means", "step", "first"),
    "appropriateness": ("together", "calm", "okay"),
    "warmth_empathy": ("feel", "understand", "care"),
    "action_oriented": ("step", "start", "this week"),
    "question_driven": ("?",),
}
MODEL = "fake-judge-2026-01"
A_MARK, B_MARK = "\nReply A:\n", "\n\nReply B:\n"
EMPTY = "(empty reply)"  # how the judge's request shows an empty reply


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", text.lower())


def score(text: str, characteristic: str) -> int:
    found = words(text)
    n = len(found)
    points = 1 if n == 0 else 2 if n < 5 else 3 if n < 15 else 4 if n < 40 else 5
    lowered = text.lower()
    if any(k in lowered for k in KEYWORDS.get(characteristic, ())):
        points += 1
    if n >= 4 and Counter(found).most_common(1)[0][1] * 2 > n:
        points -= 1
    return max(1, min(5, points))


def replies(prompt: str) -> tuple[str, str]:
    """The two replies in a judge's request (domain/quality/judging.py `messages` writes them last)."""
    start = prompt.rindex(A_MARK) + len(A_MARK)
    middle = prompt.rindex(B_MARK)
    shown = prompt[start:middle], prompt[middle + len(B_MARK):]
    return tuple("" if text == EMPTY else text for text in shown)  # type: ignore[return-value]


@dataclass
class FakeJudge(LoopbackHttpServer):
    api_key: str = "judge-test-key"
    script: list[str] = field(default_factory=list)  # the next answers: "429", "500", "malformed", "not-json-body"
    retry_after: str = "1"
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    step = fake.script.pop(0) if fake.script else ""
                if self.path != "/v1/chat/completions":
                    return self.answer(404, {"error": {"message": f"no route {self.path}"}})
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self.answer(401, {"error": {"message": "Incorrect API key provided",
                                                       "code": "invalid_api_key"}})
                if step == "429":
                    return self.answer(429, {"error": {"message": "Rate limit reached", "type": "requests"}},
                                       {"Retry-After": fake.retry_after})
                if step == "500":
                    return self.answer(500, {"error": {"message": "The server had an error"}})
                if step == "not-json-body":
                    return self.raw(200, b"<html>gateway</html>")
                content = "{\"reply_a\": {\"empathy\": 5" if step == "malformed" else json.dumps(fake.judge(body))
                return self.answer(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "model": MODEL,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": sum(len(m["content"]) for m in body["messages"]) // 4,
                              "completion_tokens": len(content) // 4}})

            def answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self.raw(status, json.dumps(body).encode(), headers)

            def raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def judge(self, body: dict[str, Any]) -> dict[str, Any]:
        schema = body["response_format"]["json_schema"]["schema"]
        names = schema["properties"]["reply_a"]["required"]
        first, second = replies(body["messages"][-1]["content"])
        return {"reply_a": {n: score(first, n) for n in names}, "reply_b": {n: score(second, n) for n in names},
                "reason": f"Scored by length and keywords ({len(words(first))} and {len(words(second))} words)."}
