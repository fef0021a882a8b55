"""A replay shared among worker processes: a thread here reads the store and hands each aggregate's
events to one worker (forked: it inherits the projections and the mapper, and touches neither the
database nor this process's connections); the workers decode and build the rows and send them
back, and the replaying thread writes them in its transaction."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

import psycopg
from eventsourcing.application import Application

from projections.base import Rows, RowsWriter
from projections.partition import Partition, Plan, Row, pages


def replay_in_workers(conn: psycopg.Connection, app: Application, plan: Plan, page: int, workers: int,
                      progress: Callable[[int], None]) -> int:
    """A thread reads the store and hands each aggregate's events to one worker (the least loaded
    when the aggregate first shows); this thread writes what the workers send back."""
    crew = Crew.start(Partition(plan, app.mapper), workers)
    feeder = Feeder(app, plan, page, crew, progress)
    try:
        feeder.start()
        with conn.cursor() as cur, RowsWriter(cur) as writer:
            for rows in crew.results():
                writer.add(rows)
    except BaseException:
        crew.stop()  # first: the feeder may be blocked handing them a page
        raise
    finally:
        feeder.join()
        crew.join()
    if feeder.error:  # the workers ended early, with what they had
        raise feeder.error
    return feeder.read


class Feeder(threading.Thread):
    def __init__(self, app: Application, plan: Plan, page: int, crew: Crew, progress: Callable[[int], None]) -> None:
        super().__init__(name="replay-feeder", daemon=True)
        self.app, self.plan, self.page, self.crew, self.progress = app, plan, page, crew, progress
        self.read = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        owner: dict[int, int] = {}  # aggregate → worker
        load = [0] * len(self.crew.inboxes)  # rows handed to each so far
        routes = self.plan.routes
        try:
            for batch in pages(self.app, self.plan, self.page):
                shares: list[list[Row]] = [[] for _ in load]
                for n in batch:  # `partition.rows` and the split in one loop: this thread is busy
                    if n.topic not in routes:
                        continue
                    key = n.originator_id.int
                    worker = owner.get(key)
                    if worker is None:
                        worker = owner[key] = min(range(len(load)), key=lambda w: load[w] + len(shares[w]))
                    shares[worker].append((n.id, key, n.originator_version, n.topic, n.state))
                for worker, (inbox, share) in enumerate(zip(self.crew.inboxes, shares, strict=True)):
                    if share:
                        inbox.send_bytes(pickle.dumps(share, pickle.HIGHEST_PROTOCOL))
                        load[worker] += len(share)
                self.read += len(batch)
                self.progress(self.read)
        except BaseException as exc:  # noqa: BLE001 - raised by the replaying thread
            self.error = exc
        finally:
            self.crew.close_inboxes()


@dataclass
class Crew:
    """Worker processes, forked: they inherit the projections and the mapper and never touch the
    database or the parent's connections, only decode and build rows."""

    plan: Plan
    processes: list[multiprocessing.process.BaseProcess]
    inboxes: list[Connection]
    outboxes: list[Connection]

    @classmethod
    def start(cls, partition: Partition, workers: int) -> Crew:
        context = multiprocessing.get_context("fork")
        crew = cls(partition.plan, [], [], [])
        for _ in range(workers):
            inbox_out, inbox_in = context.Pipe(duplex=False)
            outbox_out, outbox_in = context.Pipe(duplex=False)
            process = context.Process(target=work, args=(partition, inbox_out, outbox_in), daemon=True,
                                      name="replay-worker")
            with warnings.catch_warnings():
                # Python 3.12+ warns on fork in a threaded process (the pool's threads): the child
                # runs none of their code and uses none of their locks or connections.
                warnings.simplefilter("ignore", DeprecationWarning)
                process.start()
            inbox_out.close()
            outbox_in.close()
            crew.processes.append(process)
            crew.inboxes.append(inbox_in)
            crew.outboxes.append(outbox_out)
        return crew

    def results(self) -> Iterator[Rows]:
        """What the workers send, as it comes, until each has sent its last."""
        open_ = list(self.outboxes)
        while open_:
            for outbox in wait(open_):
                try:
                    kind, payload = pickle.loads(outbox.recv_bytes())
                except EOFError:
                    raise RuntimeError("a replay worker died") from None
                if kind == "error":
                    raise payload
                if kind == "done":
                    payload, given, positions = payload
                    self.plan.add(given, positions)
                    open_.remove(outbox)
                yield from payload

    def close_inboxes(self) -> None:
        """Tells each worker that no more is coming: an empty message, since closing is not
        enough (the workers forked later hold copies of the earlier ones' inbox ends)."""
        for inbox in self.inboxes:
            try:
                inbox.send_bytes(b"")
            except OSError:
                pass  # it is gone: the reader of its outbox sees that
            inbox.close()

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()

    def join(self) -> None:
        for process in self.processes:
            process.join()
        for outbox in self.outboxes:
            outbox.close()


def work(partition: Partition, inbox: Connection, outbox: Connection) -> None:
    """A worker: feeds its share of each page to the partition and sends back the rows, then the
    rest once the feeder says it is done (an empty message)."""
    try:
        while data := inbox.recv_bytes():
            outbox.send_bytes(pickle.dumps(("rows", partition.feed(pickle.loads(data))), pickle.HIGHEST_PROTOCOL))
        done = (partition.take(final=True), partition.given, partition.positions)
        outbox.send_bytes(pickle.dumps(("done", done), pickle.HIGHEST_PROTOCOL))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        exc.add_note(f"in a replay worker:\n{traceback.format_exc()}")
        try:
            report = pickle.dumps(("error", exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its traceback as text
            report = pickle.dumps(("error", RuntimeError(f"a replay worker failed:\n{traceback.format_exc()}")))
        outbox.send_bytes(report)
