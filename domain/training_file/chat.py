"""OpenAI's chat fine-tuning format (JSON Lines, one {"messages": [...]} per line) read into our
conversations: each line one conversation, each trained assistant message one training pair, with
the turns before it as its context (docs/training-file-format.md, "OpenAI chat format")."""

from __future__ import annotations

from dataclasses import dataclass

from domain.training_file.decoding import Decoded
from domain.training_file.fields import Context, Fields, Place, describe
from domain.training_file.model import (
    FORMAT_VERSION,
    OPENAI_CHAT_FORMAT,
    Conversation,
    TrainingFile,
    TrainingPair,
)
from domain.training_file.problems import ProblemLog

# The scaffolding our format has and OpenAI's has not: what the catalog shows for such a file.
UNSPECIFIED = "unspecified"
SYSTEM_ROLES = frozenset({"system", "developer"})  # "developer" is OpenAI's newer name for a system message
ROLES = SYSTEM_ROLES | {"user", "assistant"}
NOT_SUPPORTED = "tool and function calling is not supported"


def is_chat(decoded: Decoded) -> bool:
    """JSON Lines whose first line holds `messages` (and no header line of ours) are OpenAI chat lines."""
    if not decoded.json_lines or decoded.header is not None or not decoded.lines:
        return False
    first = decoded.lines[0][1]
    return isinstance(first, dict) and "messages" in first


def read_chat(decoded: Decoded, log: ProblemLog) -> TrainingFile | None:
    read = [_line(number, line, value, log) for number, (line, value) in enumerate(decoded.lines, start=1)]
    if any(c is None for c in read):
        return None
    return TrainingFile(FORMAT_VERSION, None, tuple(c for c in read if c), OPENAI_CHAT_FORMAT)


@dataclass(frozen=True)
class _Message:
    role: str
    content: str
    weight: int | None


def _line(number: int, line: int, value: object, log: ProblemLog) -> Conversation | None:
    conversation_id = f"line-{line}"
    context = Context(conversation_id, number)
    if not isinstance(value, dict):
        log.add(context.problem(Place(line), f"Line {line} is not an object (it is {describe(value)})"))
        return None
    fields = Fields(value, f"Line {line}", Place(line), log, context)
    if not _chat_shaped(fields):
        return None
    items = fields.array("messages")
    if items is None:
        return None
    if not items:
        fields.problem("messages", f"Line {line} has no messages")
        return None
    messages = [_message(fields, index, item) for index, item in enumerate(items)]
    if fields.failed or any(m is None for m in messages):
        return None
    pairs = _pairs(fields, [m for m in messages if m])
    if pairs is None:
        return None
    return Conversation(conversation_id, UNSPECIFIED, UNSPECIFIED, UNSPECIFIED, None, False, pairs)


def _chat_shaped(fields: Fields) -> bool:
    """False (with the problem) for a line of another OpenAI format; tools are refused but read on."""
    line = fields.place.line
    for key in ("tools", "functions"):
        if fields.obj.get(key):
            fields.problem(key, f"Line {line} has '{key}': {NOT_SUPPORTED}")
    if "messages" in fields.obj:
        return True
    if "prompt" in fields.obj or "completion" in fields.obj:
        fields.problem("messages", f"Line {line} is a prompt/completion example: write it as a chat example,"
                                   ' {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}')
        return False
    if "preferred_completion" in fields.obj:
        fields.problem("messages", f"Line {line} is a preference (DPO) example: only supervised chat examples,"
                                   ' {"messages": [...]}, can be trained')
        return False
    return True


def _message(line: Fields, index: int, item: object) -> _Message | None:
    place = line.place.child("messages").item(index)
    subject = f"{line.subject}, message #{index + 1}"
    if not isinstance(item, dict):
        line.log.add(line.context.problem(place, f"{subject} is not an object (it is {describe(item)})"))
        line.failed = True
        return None
    fields = Fields(item, subject, place, line.log, line.context)
    role = fields.string("role")
    if role and role not in ROLES:
        if role in ("tool", "function"):
            fields.problem("role", f"{subject} has role '{role}': {NOT_SUPPORTED}")
        else:
            fields.problem("role", f"{subject} has 'role' of '{role}', expected system, user or assistant")
    calls = [key for key in ("tool_calls", "function_call") if item.get(key) is not None]
    for key in calls:
        fields.problem(key, f"{subject} has '{key}': {NOT_SUPPORTED}")
    # a tool call's content is null by design: the call is the one problem to fix
    content = "" if calls and item.get("content") is None else _content(fields, allow_empty=role in SYSTEM_ROLES)
    weight = _weight(fields, role)
    if fields.failed:
        line.failed = True
        return None
    return _Message("system" if role in SYSTEM_ROLES else role, content, weight)


def _content(fields: Fields, allow_empty: bool) -> str:
    """A string, or an array of text parts ({"type": "text", "text": ...}) joined by new lines."""
    if "content" not in fields.obj:
        fields.required("content")
        return ""
    value = fields.obj["content"]
    if isinstance(value, list):
        value = _text_parts(fields, value)
    elif not isinstance(value, str):
        fields.wrong_type("content", value, "a string or an array of text parts")
        return ""
    if isinstance(value, str) and not allow_empty and not value.strip() and not fields.failed:
        fields.problem("content", f"{fields.subject} has an empty 'content'")
    return value if isinstance(value, str) else ""


def _text_parts(fields: Fields, parts: list[object]) -> str:
    texts = []
    for index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        text = part.get("text") if isinstance(part, dict) else None
        if kind == "text" and isinstance(text, str):
            texts.append(text)
            continue
        what = f"of type '{kind}': only text parts are supported" if isinstance(kind, str) and kind != "text" \
            else 'that is not a text part ({"type": "text", "text": "..."})'
        place = fields.place.child("content").item(index)
        fields.log.add(fields.context.problem(place, f"{fields.subject} has a content part #{index + 1} {what}"))
        fields.failed = True
    return "\n".join(texts)


def _weight(fields: Fields, role: str) -> int | None:
    """OpenAI's `weight` (0 or 1, assistant messages only): 0 keeps the turn as context, untrained."""
    value = fields.obj.get("weight")
    if value is None:
        return None
    if role != "assistant":
        fields.problem("weight", f"{fields.subject} has 'weight', which only assistant messages may have")
    elif isinstance(value, bool) or value not in (0, 1) or not isinstance(value, int):
        fields.out_of_range("weight", value, "0 or 1")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _pairs(line: Fields, messages: list[_Message]) -> tuple[TrainingPair, ...] | None:
    """One pair per trained assistant message (weight absent or 1), following a user message; the
    leading system messages are its system prompt, the turns between them and that user message
    its context."""
    leading = next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))
    system_prompt = "\n\n".join(m.content for m in messages[:leading])
    pairs, assistants = [], 0
    for index, message in enumerate(messages):
        if message.role != "assistant":
            continue
        assistants += 1
        if message.weight == 0:
            continue
        if index == 0 or messages[index - 1].role != "user":
            place = line.place.child("messages").item(index)
            line.log.add(line.context.problem(place, f"{line.subject}, message #{index + 1} is an assistant message"
                                                     " that does not follow a user message"))
            line.failed = True
            continue
        context = tuple((m.role, m.content) for m in messages[leading:index - 1])
        pairs.append(TrainingPair(system_prompt, messages[index - 1].content, message.content, turn=assistants,
                                  context=context))
    if line.failed:
        return None
    if not pairs:
        why = " (every assistant message has weight 0)" if assistants else ""
        line.problem("messages", f"{line.subject} has no assistant message to train on{why}")
        return None
    return tuple(pairs)
