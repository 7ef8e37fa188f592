"""Executions in Kestra's shape: the execution rows, their task runs and logs.

The embedded engine writes them through the ``*_in`` methods inside its own transactions (it
decides what happens; these only know how it is stored); the pages read them back as
:class:`~console.domain.executions.Execution`. Listing queries read indexed scalar columns and
only decode the small JSON columns of the rows on the requested page, so they stay fast with
100,000 executions. Task outputs keep their large documents (decisions) once, in the documents
table (:mod:`~console.storage.documents`); reads put them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from console.domain.executions import Execution, LogEntry, State, StateHistory, TaskRun, history_with
from console.domain.models import format_time, now_text, parse_time
from console.storage.codec import pack
from console.storage.database import Connection, Database, dumps, loads
from console.storage.documents import Documents


@dataclass(frozen=True)
class ExecutionState:
    """What the engine checks before it changes an execution."""

    state: State
    owner: str | None
    triggered_by: str | None


@dataclass(frozen=True)
class StoredTaskRun:
    """A task run as the engine needs it to carry on: its id, state and outputs."""

    id: str
    task_id: str
    state: State
    outputs: dict[str, Any]


@dataclass(frozen=True)
class OrphanCandidate:
    """A CREATED/RUNNING execution whose owner recovery must judge."""

    id: str
    state: State
    owner: str | None
    heartbeat_at: str | None
    restarts: int


class Executions:
    """Execution rows, task runs and logs."""

    def __init__(self, db: Database, documents: Documents) -> None:
        self.db = db
        self.documents = documents

    # -- reads ------------------------------------------------------------------------------------

    def get(self, execution_id: str, *, with_task_runs: bool = True) -> Execution | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
            if row is None:
                return None
            runs = (
                conn.execute(
                    "SELECT * FROM task_runs WHERE execution_id = ? ORDER BY seq", (execution_id,)
                ).fetchall()
                if with_task_runs
                else []
            )
            task_runs = [_task_run(r, self.documents.unpack(loads(r["outputs"], {}), conn)) for r in runs]
        execution = _execution(row)
        execution.task_runs = task_runs
        return execution

    def row(self, execution_id: str) -> dict[str, Any] | None:
        """The raw row (JSON columns as text), for checks and tests."""
        return self.row_in(self.db.conn, execution_id)

    @staticmethod
    def row_in(conn: Connection, execution_id: str) -> dict[str, Any] | None:
        row = conn.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return dict(row) if row else None

    def count(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0])

    def search(
        self,
        *,
        states: list[State] | None = None,
        flow_id: str | None = None,
        page: int = 1,
        size: int = 50,
    ) -> tuple[list[Execution], int]:
        """Newest first, without task runs (like Kestra's search)."""
        page = max(1, int(page))
        size = max(1, min(int(size), 500))
        where: list[str] = []
        args: list[Any] = []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += [State(s).value for s in states]
        if flow_id:
            where.append("flow_id = ?")
            args.append(flow_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        columns = "id, namespace, flow_id, state, start_date, inputs, outputs, labels, histories"
        with self.db.read() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM executions{clause}", args).fetchone()[0]  # noqa: S608
            # the page's ids come from a covering index (deep pages skip index entries, not rows)
            rows = conn.execute(
                f"SELECT {columns} FROM executions WHERE id IN ("  # noqa: S608 - clause built from constants
                f"SELECT id FROM executions{clause} ORDER BY start_date DESC, id DESC LIMIT ? OFFSET ?) "
                "ORDER BY start_date DESC, id DESC",
                [*args, size, (page - 1) * size],
            ).fetchall()
        return [_execution(r) for r in rows], total

    def logs(self, execution_id: str) -> list[LogEntry]:
        rows = self.db.conn.execute(
            "SELECT l.ts, l.level, l.message, l.task_id, t.id AS task_run_id FROM logs l "
            "LEFT JOIN task_runs t ON t.execution_id = l.execution_id AND t.task_id = l.task_id "
            "WHERE l.execution_id = ? ORDER BY l.seq",
            (execution_id,),
        )
        return [
            LogEntry(
                timestamp=parse_time(r["ts"]),
                level=r["level"],
                message=r["message"],
                task_id=r["task_id"],
                task_run_id=r["task_run_id"],
            )
            for r in rows
        ]

    def launch_input(self, execution_id: str) -> dict[str, Any]:
        """What the execution was launched with (the ``collect`` step's input)."""
        row = self.db.conn.execute("SELECT launch FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return loads(row["launch"], {}) if row else {}

    def task_runs_by_task(self, execution_id: str) -> dict[str, StoredTaskRun]:
        rows = self.db.conn.execute(
            "SELECT id, task_id, state, outputs FROM task_runs WHERE execution_id = ?", (execution_id,)
        ).fetchall()
        return {
            r["task_id"]: StoredTaskRun(
                r["id"], r["task_id"], State(r["state"]), self.documents.unpack(loads(r["outputs"], {}))
            )
            for r in rows
        }

    def orphan_candidates(self) -> list[OrphanCandidate]:
        """Executions left CREATED or RUNNING and not queued (a queued run is held by nobody on
        purpose: the scheduler takes it when due), with how often they were restarted already."""
        rows = self.db.conn.execute(
            "SELECT id, state, owner, heartbeat_at, histories FROM executions WHERE state IN "
            "('CREATED', 'RUNNING') AND id NOT IN (SELECT execution_id FROM run_queue)"
        ).fetchall()
        return [
            OrphanCandidate(
                r["id"],
                State(r["state"]),
                r["owner"],
                r["heartbeat_at"],
                sum(1 for h in decode_history(r["histories"]) if h["state"] == State.RESTARTED.value),
            )
            for r in rows
        ]

    # -- writes inside the caller's transaction -----------------------------------------------------

    @staticmethod
    def insert_in(
        conn: Connection,
        *,
        execution_id: str,
        namespace: str,
        flow_id: str,
        inputs: dict[str, Any],
        labels: dict[str, str],
        triggered_by: str,
        launch: dict[str, Any],
        owner: str | None,
    ) -> None:
        """A new execution, CREATED now and owned by ``owner`` (None: queued, held by nobody)."""
        now = now_text()
        conn.execute(
            "INSERT INTO executions (id, namespace, flow_id, state, start_date, updated_at, inputs, labels, "
            "histories, triggered_by, launch, owner, heartbeat_at) "
            "VALUES (?, ?, ?, 'CREATED', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                execution_id,
                namespace,
                flow_id,
                now,
                now,
                dumps(inputs),
                dumps(labels),
                encode_history(history_with([], State.CREATED)),
                triggered_by,
                dumps(launch),
                owner,
                now,
            ),
        )

    @staticmethod
    def state_in(conn: Connection, execution_id: str) -> ExecutionState | None:
        """The execution's state and owner, read inside the caller's transaction."""
        row = conn.execute(
            "SELECT state, owner, triggered_by FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return ExecutionState(State(row["state"]), row["owner"], row["triggered_by"]) if row else None

    @staticmethod
    def transition_in(
        conn: Connection,
        execution_id: str,
        *states: State,
        ended: bool | None = None,
        owner: str | None = None,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        """Append ``states`` to the history and make the last one current. ``ended`` True stamps
        ``end_date``, False clears it; ``owner`` takes the execution over (and beats its heart)."""
        row = conn.execute("SELECT histories FROM executions WHERE id = ?", (execution_id,)).fetchone()
        now = now_text()
        sets = ["state = ?", "histories = ?", "updated_at = ?"]
        history = history_with(decode_history(row["histories"]), *states)
        args: list[Any] = [states[-1].value, encode_history(history), now]
        if ended is not None:
            sets.append("end_date = ?")
            args.append(now if ended else None)
        if owner is not None:
            sets += ["owner = ?", "heartbeat_at = ?"]
            args += [owner, now]
        if outputs is not None:
            sets.append("outputs = ?")
            args.append(dumps(outputs))
        conn.execute(f"UPDATE executions SET {', '.join(sets)} WHERE id = ?", [*args, execution_id])  # noqa: S608

    @staticmethod
    def heartbeat_in(conn: Connection, execution_id: str) -> None:
        now = now_text()
        conn.execute(
            "UPDATE executions SET heartbeat_at = ?, updated_at = ? WHERE id = ?", (now, now, execution_id)
        )

    @staticmethod
    def claim_in(conn: Connection, execution_id: str, *, owner: str, was: OrphanCandidate) -> bool:
        """Take an orphan over unless someone changed it since it was read; True when claimed."""
        return bool(
            conn.execute(
                "UPDATE executions SET owner = ?, heartbeat_at = ? WHERE id = ? AND owner IS ? AND state = ?",
                (owner, now_text(), execution_id, was.owner, was.state.value),
            ).rowcount
        )

    @staticmethod
    def insert_task_run_in(
        conn: Connection, *, task_run_id: str, execution_id: str, seq: int, task_id: str
    ) -> None:
        """A task run that starts now (CREATED then RUNNING)."""
        conn.execute(
            "INSERT INTO task_runs (id, execution_id, seq, task_id, state, histories) "
            "VALUES (?, ?, ?, ?, 'RUNNING', ?)",
            (
                task_run_id,
                execution_id,
                seq,
                task_id,
                encode_history(history_with([], State.CREATED, State.RUNNING)),
            ),
        )

    @staticmethod
    def transition_task_run_in(
        conn: Connection,
        execution_id: str,
        task_id: str,
        *states: State,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        """Append ``states`` to the history of the execution's run of ``task_id``, make the last one
        current, set its outputs."""
        key = (execution_id, task_id)
        row = conn.execute(
            "SELECT histories FROM task_runs WHERE execution_id = ? AND task_id = ?", key
        ).fetchone()
        histories = encode_history(history_with(decode_history(row["histories"]), *states))
        if outputs is None:
            conn.execute(
                "UPDATE task_runs SET state = ?, histories = ? WHERE execution_id = ? AND task_id = ?",
                (states[-1].value, histories, *key),
            )
        else:
            conn.execute(
                "UPDATE task_runs SET state = ?, histories = ?, outputs = ? "
                "WHERE execution_id = ? AND task_id = ?",
                (states[-1].value, histories, dumps(pack(conn, outputs)), *key),
            )

    @staticmethod
    def save_task_run_outputs_in(
        conn: Connection, execution_id: str, task_id: str, outputs: dict[str, Any]
    ) -> None:
        """Replace a running task run's outputs without changing its state (a step's progress so far,
        kept so that a re-run after a crash knows what already happened)."""
        conn.execute(
            "UPDATE task_runs SET outputs = ? WHERE execution_id = ? AND task_id = ?",
            (dumps(outputs), execution_id, task_id),
        )

    @classmethod
    def end_task_runs_in(
        cls, conn: Connection, execution_id: str, *, now_in: tuple[State, ...], state: State
    ) -> None:
        """Every task run of the execution currently in one of ``now_in`` goes to ``state``."""
        rows = conn.execute(
            "SELECT task_id FROM task_runs WHERE execution_id = ? "  # noqa: S608 - placeholders only
            f"AND state IN ({','.join('?' * len(now_in))})",
            (execution_id, *(s.value for s in now_in)),
        ).fetchall()
        for row in rows:
            cls.transition_task_run_in(conn, execution_id, row["task_id"], state)

    @staticmethod
    def task_run_id_in(conn: Connection, execution_id: str, task_id: str) -> str | None:
        row = conn.execute(
            "SELECT id FROM task_runs WHERE execution_id = ? AND task_id = ?", (execution_id, task_id)
        ).fetchone()
        return row["id"] if row else None

    @staticmethod
    def first_unfinished_task_in(conn: Connection, execution_id: str) -> str | None:
        row = conn.execute(
            "SELECT task_id FROM task_runs WHERE execution_id = ? AND state != 'SUCCESS' "
            "ORDER BY seq LIMIT 1",
            (execution_id,),
        ).fetchone()
        return row["task_id"] if row else None

    @staticmethod
    def log_in(
        conn: Connection,
        execution_id: str,
        level: str,
        message: str,
        *,
        task_id: str | None = None,
    ) -> None:
        """One log line of the execution (of its task ``task_id``; the task run is read back by a
        join rather than stored on every line)."""
        conn.execute(
            "INSERT INTO logs (execution_id, seq, task_id, ts, level, message) VALUES (?, "
            "(SELECT COALESCE(MAX(seq), 0) + 1 FROM logs WHERE execution_id = ?), ?, ?, ?, ?)",
            (execution_id, execution_id, task_id, now_text(), level, message),
        )

    @staticmethod
    def active_runs_in(conn: Connection, label: str, value: str) -> int:
        """CREATED/RUNNING executions whose label ``label`` is ``value`` (a caller's runs in progress;
        a paused run waits for a human and costs nothing)."""
        row = conn.execute(
            "SELECT COUNT(*) FROM executions WHERE state IN ('CREATED', 'RUNNING') "
            "AND json_extract(labels, '$.' || ?) = ?",
            (label, value),
        ).fetchone()
        return int(row[0])


# -- row converters ------------------------------------------------------------------------------------


def decode_history(text: str | None) -> list[dict[str, str]]:
    """A stored state history as ``[{"state", "date"}]``. Written as ``[[state, date], [state, ms],
    ...]``: the first entry's date, then each entry's milliseconds after the one before (a third of
    the bytes of dates, and nine histories per execution); consoles before that wrote
    ``[state, date]`` pairs or ``{"state", "date"}`` objects, read too."""
    out: list[dict[str, str]] = []
    previous: datetime | None = None
    for item in loads(text, []):
        if isinstance(item, dict):
            state, when = item["state"], item["date"]
        else:
            state, when = item[0], item[1]
        if isinstance(when, int | float) and previous is not None:
            moment = previous + timedelta(milliseconds=when)
        else:
            moment = parse_time(str(when))
        out.append({"state": state, "date": format_time(moment)})
        previous = moment
    return out


def encode_history(items: list[dict[str, str]]) -> str:
    compact: list[list[Any]] = []
    previous: datetime | None = None
    for item in items:
        moment = parse_time(item["date"])
        if previous is None:
            compact.append([item["state"], item["date"]])
        else:
            compact.append([item["state"], round((moment - previous).total_seconds() * 1000)])
        previous = moment
    return dumps(compact)


def _histories(text: str | None) -> list[StateHistory]:
    return [StateHistory(State(h["state"]), parse_time(h["date"])) for h in decode_history(text)]


def _execution(row: Any) -> Execution:
    return Execution(
        id=row["id"],
        namespace=row["namespace"],
        flow_id=row["flow_id"],
        state=State(row["state"]),
        histories=_histories(row["histories"]),
        inputs=loads(row["inputs"], {}),
        outputs=loads(row["outputs"], {}),
        labels=loads(row["labels"], {}),
    )


def _task_run(row: Any, outputs: dict[str, Any]) -> TaskRun:
    return TaskRun(
        id=row["id"],
        task_id=row["task_id"],
        state=State(row["state"]),
        histories=_histories(row["histories"]),
        outputs=outputs,
    )
