"""OpenAI's chat fine-tuning format (domain/training_file/chat.py): read into our conversations by the
one validator, every problem at its line and field, and trained on by the agent exactly as the same
content written in our format (gpu_agent/data.py)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from domain.training_file import OPENAI_CHAT_FORMAT, load, summarize, validate
from domain.training_file.model import TrainingPair
from gpu_agent.data import examples, split


def jsonl(*lines: object) -> bytes:
    return "\n".join(json.dumps(line) for line in lines).encode()


def chat(*turns: tuple[str, str], **extra: object) -> dict[str, object]:
    return {"messages": [{"role": role, "content": content} for role, content in turns], **extra}


def test_each_line_is_a_conversation_and_each_trained_assistant_turn_a_pair_with_the_turns_before_it() -> None:
    data = jsonl(
        chat(("system", "Be warm."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "Rent?"), ("assistant", "50%")),
        {"messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [
            {"type": "text", "text": "Two"}, {"type": "text", "text": "parts"}]},
            {"role": "assistant", "content": "Skipped", "weight": 0}, {"role": "user", "content": "And?"},
            {"role": "assistant", "content": "Trained", "weight": 1, "name": "advisor"}]})

    training_file = load(data)

    assert training_file.source_format == OPENAI_CHAT_FORMAT and training_file.name is None
    first, second = training_file.conversations
    assert (first.id, first.persona, first.emotional_arc, first.topic, first.quality, first.human_reviewed) == (
        "line-1", "unspecified", "unspecified", "unspecified", None, False)
    assert first.training_pairs == (
        TrainingPair("Be warm.", "Hi", "Hello!", turn=1),
        TrainingPair("Be warm.", "Rent?", "50%", turn=2, context=(("user", "Hi"), ("assistant", "Hello!"))))
    assert second.training_pairs == (  # weight 0: kept as context, not trained
        TrainingPair("Be brief.", "And?", "Trained", turn=2,
                     context=(("user", "Two\nparts"), ("assistant", "Skipped"))),)


def test_the_catalog_shows_no_scores_and_unspecified_scaffolding_for_chat_lines() -> None:
    stats = summarize(jsonl(*(chat(("user", f"Q{n}"), ("assistant", f"A{n}")) for n in range(4))))

    assert (stats.conversation_count, stats.training_pair_count, stats.format) == (4, 4, OPENAI_CHAT_FORMAT)
    assert stats.quality.overall is None and stats.quality_indicator == "⚠ Review"
    assert [(s.value, s.count, s.percent) for s in stats.personas] == [("unspecified", 4, Decimal("100.0"))]
    assert stats.human_reviewed_count == 0


def test_one_chat_line_alone_is_read_as_json_lines() -> None:
    assert load(json.dumps(chat(("user", "Q"), ("assistant", "A"))).encode()).source_format == OPENAI_CHAT_FORMAT


@pytest.mark.parametrize(("line", "place", "message"), [
    (chat(("user", "Q"), ("assistant", "  ")), "line 1: messages[1].content",
     "Line 1, message #2 has an empty 'content'"),
    ({"messages": [{"content": "Q"}, {"role": "assistant", "content": "A"}]}, "line 1: messages[0].role",
     "Line 1, message #1 is missing 'role'"),
    (chat(("user", "Q"), ("critic", "A")), "line 1: messages[1].role",
     "Line 1, message #2 has 'role' of 'critic', expected system, user or assistant"),
    (chat(("user", "Q"), ("tool", "{}")), "line 1: messages[1].role",
     "Line 1, message #2 has role 'tool': tool and function calling is not supported"),
    ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": None, "tool_calls": [{}]}]},
     "line 1: messages[1].tool_calls",
     "Line 1, message #2 has 'tool_calls': tool and function calling is not supported"),
    (chat(("user", "Q"), ("assistant", "A"), tools=[{"type": "function"}]), "line 1: tools",
     "Line 1 has 'tools': tool and function calling is not supported"),
    ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "weight": 2}]},
     "line 1: messages[1].weight", "Line 1, message #2 has 'weight' of 2, expected 0 or 1"),
    ({"messages": [{"role": "user", "content": "Q", "weight": 1}, {"role": "assistant", "content": "A"}]},
     "line 1: messages[0].weight", "Line 1, message #1 has 'weight', which only assistant messages may have"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
                   {"role": "assistant", "content": "A"}]},
     "line 1: messages[0].content[0]", "Line 1, message #1 has a content part #1 of type 'image_url': only text parts"
                                       " are supported"),
    (chat(("system", "S"), ("assistant", "A")), "line 1: messages[1]",
     "Line 1, message #2 is an assistant message that does not follow a user message"),
    ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "weight": 0}]},
     "line 1: messages", "Line 1 has no assistant message to train on (every assistant message has weight 0)"),
    ({"messages": []}, "line 1: messages", "Line 1 has no messages"),
    ({"messages": "Q"}, "line 1: messages", "Line 1 has 'messages' that is a string, expected an array"),
    ({"messages": ["Q"]}, "line 1: messages[0]", "Line 1, message #1 is not an object (it is a string)"),
])
def test_each_problem_names_its_line_and_field(line: dict, place: str, message: str) -> None:
    good = chat(("user", "Q"), ("assistant", "A"))

    report = validate(jsonl(good, line))

    shifted = place.replace("line 1", "line 2")
    assert [(p.place, p.message) for p in report.problems] == [(shifted, message.replace("Line 1", "Line 2"))]
    assert report.problems[0].conversation_id == "line-2" and report.problems[0].conversation_number == 2


def test_lines_of_openais_other_formats_are_named_as_such() -> None:
    report = validate(jsonl(chat(("user", "Q"), ("assistant", "A")), {"prompt": "Q", "completion": "A"},
                            {"input": {"messages": []}, "preferred_completion": [], "non_preferred_completion": []},
                            [1, 2]))

    assert [(p.place, p.message) for p in report.problems] == [
        ("line 2: messages", 'Line 2 is a prompt/completion example: write it as a chat example, {"messages":'
                             ' [{"role": "user", ...}, {"role": "assistant", ...}]}'),
        ("line 3: messages", 'Line 3 is a preference (DPO) example: only supervised chat examples, {"messages":'
                             " [...]}, can be trained"),
        ("line 4", "Line 4 is not an object (it is an array)")]


def test_the_agent_trains_on_chat_lines_exactly_as_on_the_same_content_in_our_format() -> None:
    """Single-turn lines and our pairs give the same examples, in the same order and split."""
    ours = {"format_version": 1, "name": "Same content", "conversations": [
        {"id": f"line-{n}", "persona": "p", "emotional_arc": "a", "topic": "t", "human_reviewed": True,
         "quality": {"empathy": 4, "clarity": 4, "appropriateness": 4},
         "training_pairs": [{"system_prompt": "Be warm.", "user_input": f"Q{n}", "target_response": f"A{n}"}]}
        for n in range(1, 11)]}
    lines = jsonl(*(chat(("system", "Be warm."), ("user", f"Q{n}"), ("assistant", f"A{n}")) for n in range(1, 11)))

    _, from_ours = examples(json.dumps(ours).encode())
    _, from_chat = examples(lines)

    assert from_chat == from_ours
    assert split(from_chat) == split(from_ours)
    assert from_chat[0].messages == [{"role": "system", "content": "Be warm."}, {"role": "user", "content": "Q1"},
                                     {"role": "assistant", "content": "A1"}]


def test_a_later_assistant_turn_is_trained_with_the_whole_conversation_before_it() -> None:
    _, found = examples(jsonl(chat(("system", "S"), ("user", "U1"), ("assistant", "A1"), ("user", "U2"),
                                   ("assistant", "A2"))))

    assert [e.messages for e in found] == [
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"},
         {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}]]
