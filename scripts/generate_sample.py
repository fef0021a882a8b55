"""Writes a deterministic sample training file of financial-advisory conversations.

    python scripts/generate_sample.py [--conversations 300] [--seed 7] [--out samples/financial-advisory.json]

Same arguments, same bytes: seeded `random`, no network, standard library only.
Format: docs/training-file-format.md.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

NAME = "Financial advisory - sample"
SYSTEM_PROMPT = "You are a warm, plain-spoken financial advisor."

PERSONAS = {
    "Anxious first-time saver": {"age": (22, 30), "income": (32, 48)},
    "Pre-retiree couple": {"age": (55, 63), "income": (90, 140)},
    "Recent graduate with student loans": {"age": (22, 26), "income": (40, 60)},
    "Small business owner": {"age": (30, 55), "income": (60, 160)},
    "Single parent": {"age": (28, 45), "income": (38, 70)},
    "Recently widowed retiree": {"age": (64, 80), "income": (30, 60)},
    "Gig-economy worker": {"age": (21, 40), "income": (25, 55)},
    "High earner with little savings": {"age": (32, 45), "income": (150, 260)},
    "Newlywed couple": {"age": (26, 34), "income": (80, 130)},
    "Mid-career changer": {"age": (38, 50), "income": (50, 90)},
}

# Each arc: how the client opens, how the advisor first acknowledges it, and how each side closes.
ARCS = {
    "anxious to reassured": (
        "I'm honestly losing sleep over this.",
        "It makes sense that this feels heavy; let's make it concrete.",
        "Okay, I feel a lot calmer now.",
        "You've done the hard part by looking at it. One step at a time.",
    ),
    "frustrated to hopeful": (
        "I keep trying and nothing changes.",
        "That frustration is fair, and it usually means the plan, not you, needs fixing.",
        "This actually feels doable.",
        "It is. Small, steady changes add up faster than it feels.",
    ),
    "confused to confident": (
        "I don't even know where to start.",
        "Good news: you only need to understand a few pieces, and we'll go one by one.",
        "I get it now. Thanks for explaining it simply.",
        "You asked exactly the right questions. You can explain this to someone else now.",
    ),
    "overwhelmed to empowered": (
        "There's just too much going on.",
        "Let's set everything down and pick up only what matters this month.",
        "I feel like I'm back in control.",
        "You are. You made every decision here yourself.",
    ),
    "skeptical to trusting": (
        "No offense, but advisors usually just want to sell me something.",
        "Fair. I'll show you the numbers and you decide; nothing here requires buying a product.",
        "That was more straightforward than I expected.",
        "Glad it helped. Check every number I gave you; it's your money.",
    ),
    "embarrassed to accepted": (
        "I'm a bit ashamed I let it get this bad.",
        "There's no judgment here. Most people are in the same spot at some point.",
        "Thanks for not making me feel stupid.",
        "You're not. Looking at it honestly takes courage.",
    ),
    "grieving to steady": (
        "My partner always handled the money, and now it's just me.",
        "I'm so sorry. We'll go slowly, and nothing needs deciding today.",
        "It helps to have a plan I understand.",
        "Take your time. We can revisit any of this whenever you need.",
    ),
    "excited to grounded": (
        "I just got a big raise and I want to do something smart with it!",
        "Congratulations! Let's make sure this raise works for you for years.",
        "Good call slowing me down a bit.",
        "Enjoy part of it, too. A plan you like is a plan you keep.",
    ),
}

# Each topic: (client question, advisor answer) steps; the {placeholders} are filled in by fill().
TOPICS = {
    "budgeting": [
        (
            "I make about ${income}k a year and still run out of money before payday.",
            "Let's track one month of spending first; most people find two or three categories that surprise them.",
        ),
        (
            "Which budgeting method should I use?",
            "Try 50/30/20: about half for needs, 30% for wants, 20% for savings and debt. Adjust it to your real life.",
        ),
        (
            "I spend around ${monthly} a month eating out. Is that bad?",
            "It's not bad, it's a choice. If it matters to you, keep it and trim somewhere you care less about.",
        ),
        (
            "How do I stop overspending on impulse?",
            "Wait 48 hours before any unplanned purchase over $50, and delete saved cards from shopping sites.",
        ),
        (
            "Should I use cash envelopes or an app?",
            "Whichever you'll actually check weekly. Consistency matters more than the tool.",
        ),
    ],
    "retirement planning": [
        (
            "I'm {age} and worried I've started saving for retirement too late.",
            "It's not too late. Catch-up contributions are allowed from 50, and every year of saving still compounds.",
        ),
        (
            "How much do I need to retire?",
            "A common starting point is 25 times your yearly spending, then we adjust for pensions and Social "
            "Security.",
        ),
        (
            "Should I take Social Security early?",
            "Each year you delay up to 70 raises your benefit by about 8%, but health and other income matter too.",
        ),
        (
            "My employer matches {match}% of my 401(k). Is it worth it?",
            "Yes. Contribute at least enough to get the full match; it's an instant return on your money.",
        ),
        (
            "What's the difference between a Roth and a traditional IRA?",
            "Traditional saves tax now and is taxed later; Roth is taxed now and grows tax-free. It depends on your "
            "tax rate now versus later.",
        ),
    ],
    "debt payoff": [
        (
            "I have about ${balance} in credit card debt at {apr}% interest.",
            "Let's list every balance, rate and minimum. Seeing it all in one place is the first win.",
        ),
        (
            "Should I use the avalanche or snowball method?",
            "Avalanche pays the highest rate first and saves the most; snowball clears small balances first for "
            "motivation. Both work if you stick with them.",
        ),
        (
            "Is a balance transfer card a good idea?",
            "It can be, if the fee is low and you can pay it off before the promotional rate ends.",
        ),
        (
            "Should I stop saving to pay off debt faster?",
            "Keep a small emergency buffer first, about one month of expenses, so a surprise doesn't go back on the "
            "card.",
        ),
        (
            "Will debt consolidation hurt my credit score?",
            "There's a small dip from the new application, but lower utilization and on-time payments usually help "
            "over time.",
        ),
    ],
    "insurance": [
        (
            "Do I really need life insurance?",
            "If anyone depends on your income, usually yes. Term insurance is the simplest and cheapest way to cover "
            "that.",
        ),
        (
            "How much life insurance should I get?",
            "A rough guide is 10 to 12 times your income, adjusted for debts, children and savings you already have.",
        ),
        (
            "Is disability insurance worth it?",
            "Your ability to earn is your biggest asset. Check what your employer covers before buying more.",
        ),
        (
            "My health plan deductible is ${deductible}. Should I pick a cheaper plan?",
            "Compare the yearly premium plus the deductible you'd realistically hit, not just the monthly price.",
        ),
        (
            "Should I raise my car insurance deductible?",
            "If you have savings to cover it, a higher deductible can lower your premium noticeably.",
        ),
    ],
    "investing basics": [
        (
            "I have ${savings} saved. Should I invest it?",
            "First make sure your emergency fund is set. Money you need within five years usually shouldn't be in "
            "stocks.",
        ),
        (
            "What's an index fund?",
            "It's a fund that owns a whole market, like the S&P 500, so you're not betting on single companies. Fees "
            "are usually low.",
        ),
        (
            "The market dropped {drop}% this month. Should I sell?",
            "Selling after a drop locks in the loss. If your timeline is long and your plan hasn't changed, staying "
            "the course is usually wiser.",
        ),
        (
            "How much should I have in stocks versus bonds?",
            "It depends on your timeline and how you'd feel in a downturn. A target-date fund handles the mix for you.",
        ),
        (
            "Is crypto a good investment?",
            "It's highly volatile. If you want exposure, keep it to a small slice you could lose without changing "
            "your plans.",
        ),
    ],
    "taxes": [
        (
            "I owe ${tax} in taxes this year and didn't expect it.",
            "Let's check your withholding. A quick update to your W-4 can prevent the same surprise next year.",
        ),
        (
            "I'm self-employed. How do quarterly taxes work?",
            "You estimate your yearly tax and pay a quarter of it four times a year, usually in April, June, "
            "September and January.",
        ),
        (
            "What deductions might I be missing?",
            "Common ones are retirement contributions, HSA contributions and, if you're self-employed, business "
            "expenses.",
        ),
        (
            "Should I file myself or hire someone?",
            "Simple returns are fine with software. If you have a business, rental property or a big life change, a "
            "professional can pay for themselves.",
        ),
        (
            "What's the difference between a deduction and a credit?",
            "A deduction lowers the income you're taxed on; a credit lowers the tax itself, dollar for dollar.",
        ),
    ],
    "emergency fund": [
        (
            "How big should my emergency fund be?",
            "Three to six months of essential expenses. With irregular income, aim for the higher end.",
        ),
        (
            "Where should I keep emergency money?",
            "A high-yield savings account: easy to reach, separate from everyday spending, and earning some interest.",
        ),
        (
            "I can only save ${small} a month. Is that even worth it?",
            "Absolutely. Automate it on payday; small amounts become a real cushion within a year.",
        ),
        (
            "I used my emergency fund for a car repair. Now what?",
            "That's exactly what it's for. Let's rebuild it gradually, without pausing your other goals entirely.",
        ),
    ],
    "home buying": [
        (
            "We want to buy a home but rent is eating our savings.",
            "Let's see what down payment is realistic and how long it takes at your current savings rate.",
        ),
        (
            "How much house can we afford on ${income}k a year?",
            "Keep total housing costs around 28% of gross income, including taxes and insurance, not just the "
            "mortgage.",
        ),
        (
            "Do we need 20% down?",
            "No, but below 20% you'll usually pay mortgage insurance. Weigh that cost against waiting longer.",
        ),
        (
            "Fixed or adjustable rate mortgage?",
            "Fixed gives certainty. Adjustable can make sense if you're confident you'll move or refinance before it "
            "resets.",
        ),
    ],
}

# Follow-ups any topic can use, so long conversations do not repeat themselves.
FOLLOW_UPS = [
    (
        "What should I do first, this week?",
        "Pick one action: set up the automatic transfer or list the numbers. Everything else can wait a week.",
    ),
    (
        "What if my income changes?",
        "Then we revisit the plan. Build it around your leanest typical month so it holds up.",
    ),
    (
        "How often should I review this?",
        "A quick check every month and a deeper look once a year, or after any big life change.",
    ),
    (
        "Should I talk to my family about this?",
        "If they share the finances or depend on you, yes. A plan everyone understands is easier to keep.",
    ),
    (
        "Is there anything I should avoid?",
        "Big moves made out of fear or excitement. Decide with the numbers, then give it time.",
    ),
    (
        "Can you write that down as a short checklist?",
        "Of course: the amount, the account, the date it moves, and the day we check in again.",
    ),
]

PAIR_COUNTS, PAIR_WEIGHTS = (2, 3, 4, 5, 6, 7, 8), (10, 18, 22, 20, 14, 9, 7)


def fill(text: str, rng: random.Random, persona: str) -> str:
    ranges = PERSONAS[persona]
    dollars = {  # name: (low, high, step)
        "monthly": (100, 900, 25), "small": (25, 400, 25), "balance": (1500, 30000, 100),
        "savings": (2000, 60000, 500), "deductible": (500, 7500, 250), "tax": (400, 6000, 50),
    }
    return text.format(
        age=rng.randint(*ranges["age"]), income=rng.randint(*ranges["income"]),
        match=rng.choice((3, 4, 5, 6)), drop=rng.choice((5, 8, 10, 12, 15)), apr=rng.choice((18, 21, 24, 27, 29)),
        **{name: f"{rng.randrange(low, high + 1, step):,}" for name, (low, high, step) in dollars.items()},
    )


def conversation(number: int, rng: random.Random) -> dict[str, object]:
    persona, arc, topic = rng.choice(list(PERSONAS)), rng.choice(list(ARCS)), rng.choice(list(TOPICS))
    opening, acknowledgement, client_close, advisor_close = ARCS[arc]
    count = rng.choices(PAIR_COUNTS, PAIR_WEIGHTS)[0]
    first, *rest = rng.sample(TOPICS[topic], len(TOPICS[topic]))
    middle = (rest + rng.sample(FOLLOW_UPS, len(FOLLOW_UPS)))[: count - 2]
    turns = [(f"{opening} {fill(first[0], rng, persona)}", f"{acknowledgement} {fill(first[1], rng, persona)}")]
    turns += [(fill(q, rng, persona), fill(a, rng, persona)) for q, a in middle]
    turns.append((client_close, advisor_close))
    return {
        "id": f"conv_{number:05d}",
        "persona": persona,
        "emotional_arc": arc,
        "topic": topic,
        "quality": {d: score(rng) for d in ("empathy", "clarity", "appropriateness")},
        "human_reviewed": rng.random() < 0.15,
        "training_pairs": [
            {"system_prompt": SYSTEM_PROMPT, "user_input": q, "target_response": a, "turn": i}
            for i, (q, a) in enumerate(turns, start=1)
        ],
    }


def score(rng: random.Random) -> float:
    return round(min(5.0, max(2.5, rng.gauss(4.3, 0.4))), 1)


def render(name: str, conversations: list[dict[str, object]]) -> str:
    """One conversation per line: valid JSON that still diffs well."""
    lines = ",\n".join(json.dumps(c, ensure_ascii=False) for c in conversations)
    return f'{{"format_version": 1, "name": {json.dumps(name)}, "conversations": [\n{lines}\n]}}\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("samples/financial-advisory.json"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    conversations = [conversation(n, rng) for n in range(1, args.conversations + 1)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(NAME, conversations), encoding="utf-8")
    pairs = sum(len(c["training_pairs"]) for c in conversations)  # type: ignore[arg-type]
    print(f"wrote {args.out}: {len(conversations)} conversations, {pairs} training pairs")


if __name__ == "__main__":
    main()
