"""`pipeline templates list|show` (FR5.2.2): the configuration templates library from the read model,
with each template's analytics; and the default templates a fresh install gets (`pipeline up` and
`pipeline db migrate` create them, as `system`, once)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO
from uuid import UUID

import psycopg

from domain.applications import BudgetPolicy
from domain.training_settings import CHECKPOINT_KEY
from infra.eventstore import EventStore
from projections.json import plain
from projections.templates import SORTS, template_jobs_now, templates_now


def add_arguments(sub: argparse._SubParsersAction, run: Callable) -> None:
    listed = sub.add_parser("list", help="the templates with usage count, success rate and averages")
    listed.add_argument("--user", help="only what this user may see (default: every template)")
    listed.add_argument("--creator", help="only this creator's")
    listed.add_argument("--tag", help="only those with this tag")
    listed.add_argument("--visibility", choices=("private", "team"))
    listed.add_argument("--sort", choices=tuple(SORTS), default="name")
    listed.add_argument("--descending", action="store_true")
    listed.add_argument("--format", choices=("text", "json"), default="text")
    listed.set_defaults(run=run, action=_list)
    show = sub.add_parser("show", help="one template: its settings, analytics and the jobs started from it")
    show.add_argument("template", help="its id, or its exact name")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(run=run, action=_show)


def run(conn: psycopg.Connection, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    return int(args.action(conn, args, out))


def _list(conn: psycopg.Connection, args: argparse.Namespace, out: TextIO) -> int:
    rows = templates_now(conn, args.user, creator=args.creator, tag=args.tag, visibility=args.visibility,
                         sort=args.sort, descending=args.descending)
    if args.format == "json":
        out.write(json.dumps([plain(r) for r in rows], indent=2) + "\n")
        return 0
    if not rows:
        print("no templates", file=sys.stderr)
        return 0
    out.write(f"{'NAME':<34} {'PRESET':<12} {'GPU':<9} {'VISIBILITY':<10} {'BY':<10} {'USED':>4} {'SUCCESS':>7}"
              f" {'AVG COST':>9}  ID\n")
    for r in rows:
        success = f"{r['success_rate']}%" if r["success_rate"] is not None else "-"
        cost = f"${r['average_cost']:,.2f}" if r["average_cost"] is not None else "-"
        out.write(f"{r['name'][:34]:<34} {r['preset']:<12} {r['gpu_tier']:<9} {r['visibility']:<10}"
                  f" {r['created_by'][:10]:<10} {r['usage']:>4} {success:>7} {cost:>9}  {r['id']}\n")
    return 0


def _show(conn: psycopg.Connection, args: argparse.Namespace, out: TextIO) -> int:
    try:
        found = templates_now(conn, template_id=UUID(args.template))
    except ValueError:
        found = [r for r in templates_now(conn) if r["name"] == args.template]
    if len(found) != 1:
        what = "no template" if not found else f"{len(found)} templates"
        print(f"pipeline: error: {what} named {args.template!r}; `pipeline templates list` shows them",
              file=sys.stderr)
        return 1
    row = found[0]
    jobs = template_jobs_now(conn, row["id"])
    if args.format == "json":
        out.write(json.dumps(plain(row | {"jobs": jobs}), indent=2) + "\n")
        return 0
    checkpoint = (row["overrides"] or {}).get(CHECKPOINT_KEY)
    lines = [f"{row['name']}  ({row['id']})", f"  {row['description']}" if row["description"] else None,
             f"  preset {row['preset']}, GPU {row['gpu_tier']}, checkpoint "
             + (f"every {checkpoint} steps" if checkpoint else "the deployment's default"),
             f"  changed from the preset: {_changes(row['overrides'])}",
             f"  {row['visibility']}, by {row['created_by']} on {row['created_at']:%Y-%m-%d %H:%M}"
             + (f", tags {', '.join(row['tags'])}" if row["tags"] else ""),
             f"  used {row['usage']} times; success rate "
             + (f"{row['success_rate']}%" if row["success_rate"] is not None else "-")
             + (f"; average cost ${row['average_cost']:,.2f}" if row["average_cost"] is not None else "")
             + (f", duration {row['average_hours']:.1f} h" if row["average_hours"] is not None else "")
             + (f", final loss {row['average_final_loss']:.4f}" if row["average_final_loss"] is not None else "")]
    lines += [f"  job {j['id']}  {j['name']}  {j['status'] or '-'}  by {j['used_by']}" for j in jobs]
    out.write("\n".join(line for line in lines if line) + "\n")
    return 0


def _changes(overrides: dict[str, Any]) -> str:
    shown = {k: v for k, v in (overrides or {}).items() if k != CHECKPOINT_KEY}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "nothing"


def seed_default_templates(database_url: str, policy: BudgetPolicy) -> list[str]:
    """FR5.2.2's three default templates, recorded by `system` when missing; returns those created."""
    store = EventStore.open(database_url, pool_size=1, policy=policy)
    try:
        return store.app.ensure_default_templates(datetime.now(timezone.utc))
    finally:
        store.close()
