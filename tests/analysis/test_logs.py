"""Log template mining: drain3 configuration, masking, before/after status, ordering, signatures, speed."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from console.analysis.logs import (
    CATEGORIES,
    EXAMPLE_CHARS,
    SURGE_MIN_COUNT,
    LogMiner,
    MinerParams,
    categorize,
    digit_agnostic,
    make_template_miner,
    mine_log_patterns,
)
from console.domain.models import LogRecord

DEPLOY = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def spread(level: str, messages: list[str], start: datetime, minutes: float) -> list[LogRecord]:
    """Records evenly spread over [start, start + minutes)."""
    step = minutes * 60 / max(len(messages), 1)
    return [LogRecord(start + timedelta(seconds=i * step), level, m) for i, m in enumerate(messages)]


def before(level: str, messages: list[str], minutes: float = 30) -> list[LogRecord]:
    return spread(level, messages, DEPLOY - timedelta(minutes=minutes), minutes)


def after(level: str, messages: list[str], minutes: float = 10) -> list[LogRecord]:
    return spread(level, messages, DEPLOY, minutes)


def by_template(patterns, needle: str):
    found = [p for p in patterns if needle in p.template]
    assert len(found) == 1, (needle, [p.template for p in patterns])
    return found[0]


# ---------------------------------------------------------------------------------------------- config


def test_miner_is_configured_in_code_and_ignores_a_drain3_ini(tmp_path, monkeypatch):
    (tmp_path / "drain3.ini").write_text("[DRAIN]\nsim_th = 0.99\ndepth = 9\nmax_children = 3\n")
    monkeypatch.chdir(tmp_path)
    miner = make_template_miner(MinerParams(sim_th=0.5, depth=5, max_children=50))
    assert miner.persistence_handler is None
    assert (miner.drain.sim_th, miner.drain.log_cluster_depth, miner.drain.max_children) == (0.5, 5, 50)
    assert miner.config.parametrize_numeric_tokens is True
    names = [mi.mask_with for mi in miner.config.masking_instructions]
    for expected in ("IP", "UUID", "HEX", "ID", "NUM", "DURATION", "PATH", "URL", "BLK", "TS"):
        assert expected in names
    default = make_template_miner()
    assert (default.drain.sim_th, default.drain.log_cluster_depth) == (0.4, 4)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("connect to 10.1.2.3:5432 failed", "connect to <IP> failed"),
        (f"order {uuid.UUID(int=12345678901234567890)} created", "order <UUID> created"),
        ("pointer 0x7ffd5a3c freed", "pointer <HEX> freed"),
        ("container 3f2a9c1b7d4e5f60a1b2 started", "container <ID> started"),
        ("request took 1532ms", "request took <DURATION>"),
        ("request took 1.5 s", "request took <DURATION>"),
        ("read /var/lib/app/data.db", "read <PATH>"),
        ("calling https://payments.internal/v1/charge?id=42", "calling <URL>"),
        ("Receiving block blk_-1608999687919862906 src", "Receiving block <BLK> src"),
        ("retry 3 of 5", "retry <NUM> of <NUM>"),
        ("at 2026-03-01T12:00:01.123Z the job ran", "at <TS> the job ran"),
        ("payload 512 MB too large", "payload <SIZE> too large"),
    ],
)
def test_masks(message, expected):
    assert LogMiner().mask(message) == expected


def test_lines_that_differ_only_in_parameters_share_one_template():
    logs = before("INFO", [f"user {i} logged in from 10.0.0.{i % 250} after {i * 3}ms" for i in range(50)])
    patterns = mine_log_patterns(logs, DEPLOY)
    assert len(patterns) == 1
    assert patterns[0].template == "user <NUM> logged in from <IP> after <DURATION>"
    assert patterns[0].count_before == 50


def test_distinct_messages_stay_distinct_templates():
    logs = before(
        "INFO", ["cache warmed up"] * 5 + ["scheduler started"] * 5 + ["listening on port 8080"] * 5
    )
    templates = {p.template for p in mine_log_patterns(logs, DEPLOY)}
    assert templates == {"cache warmed up", "scheduler started", "listening on port <NUM>"}


# ------------------------------------------------------------------------------- fast masking is exact


def test_digit_agnostic_detects_literal_digits():
    assert digit_agnostic(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}")
    assert digit_agnostic(r"\b0[xX][0-9a-fA-F]+\b")  # 0 is kept as is in the digit shape
    assert not digit_agnostic(r"code (?:137|139)")
    assert not digit_agnostic(r"(a)\1")


def test_mask_all_equals_drain3_masker_on_tricky_lines():
    rng = random.Random(3)
    messages = []
    for _ in range(3000):
        n = rng.randint(0, 99999)
        messages += [
            f"HikariPool-{rng.randint(1, 3)} - timeout after {n}ms",  # digits survive masking
            f"svc-{rng.randint(1, 9)} started",
            f"value {rng.randint(0, 9)}x{rng.randint(0, 9)}f and 0x{n:x}",
            f"GET /api/v{rng.randint(1, 3)}/items/{n} {rng.choice([200, 500])} t={rng.getrandbits(64):016x}",
            f"exited with code {rng.choice([0, 1, 137, 139])}",
            f"{n}.{n % 256}.1.{n % 7} {n} {n / 7:.3f} {n}KB {n} ms",
        ]
    miner = LogMiner()
    fast = miner.mask_all(messages)
    assert set(fast) == set(messages)
    for message in set(messages):
        assert fast[message] == miner.mask(message), message
    # digits that no mask consumes keep messages apart: the digit-shape shortcut must not merge them
    pair = miner.mask_all(["node7 started", "node8 started"])
    assert pair == {"node7 started": "node7 started", "node8 started": "node8 started"}


def test_mask_all_with_non_agnostic_masks_falls_back_to_exact_masking():
    params = MinerParams(pre_masks=(), masks=((r"code 13[79]", "KILLED"), (r"\d+", "NUM")))
    miner = LogMiner(params)
    messages = ["exited code 137", "exited code 128", "exited code 139"]
    assert miner.mask_all(messages) == {m: miner.mask(m) for m in messages}
    assert miner.mask_all(messages)["exited code 128"] == "exited code <NUM>"


# ---------------------------------------------------------------------------------------- statuses


def test_new_gone_steady_statuses():
    logs = (
        before("INFO", ["health check ok"] * 30)
        + after("INFO", ["health check ok"] * 10)
        + before("WARN", ["legacy endpoint used"] * 12)
        + after("ERROR", ["NullPointerException in OrderService"] * 4)
    )
    patterns = mine_log_patterns(logs, DEPLOY)
    assert by_template(patterns, "health check").status == "steady"
    gone = by_template(patterns, "legacy endpoint")
    assert (gone.status, gone.count_before, gone.count_after) == ("gone", 12, 0)
    new = by_template(patterns, "NullPointerException")
    assert (new.status, new.count_before, new.count_after) == ("new", 0, 4)


def test_rates_are_per_minute_so_a_shorter_window_is_not_a_surge():
    # 60 lines in 60 min before (1/min) and 10 lines in 10 min after (1/min): same rate -> steady.
    logs = before("WARN", ["retrying request"] * 60, minutes=60) + after(
        "WARN", ["retrying request"] * 10, 10
    )
    (pattern,) = mine_log_patterns(logs, DEPLOY)
    assert pattern.status == "steady"
    # 40 lines in the same 10 min after (4/min) -> surging.
    logs = before("WARN", ["retrying request"] * 60, minutes=60) + after(
        "WARN", ["retrying request"] * 40, 10
    )
    (pattern,) = mine_log_patterns(logs, DEPLOY)
    assert pattern.status == "surging"


def test_a_few_lines_are_never_a_surge():
    # rate after is far above before, but below the minimum count
    logs = before("ERROR", ["disk almost full"], minutes=60) + after("ERROR", ["disk almost full"] * 2, 10)
    (pattern,) = mine_log_patterns(logs, DEPLOY)
    assert pattern.count_after < SURGE_MIN_COUNT
    assert pattern.status == "steady"


def test_explicit_window_bounds_override_the_log_timestamps():
    # The logs alone span 10 min before / 10 min after, but the snapshot windows were 60 / 10 min.
    logs = before("WARN", ["retrying request"] * 10, minutes=10) + after(
        "WARN", ["retrying request"] * 10, 10
    )
    assert mine_log_patterns(logs, DEPLOY)[0].status == "steady"
    patterns = mine_log_patterns(logs, DEPLOY, before_minutes=60, after_minutes=10)
    assert patterns[0].status == "surging"


# ------------------------------------------------------------------------------- level, example, order


def test_level_is_the_most_severe_seen_and_example_is_truncated():
    long_tail = "x" * 1000
    logs = before("INFO", [f"payment {i} declined {long_tail}" for i in range(5)]) + after(
        "error", [f"payment {i} declined {long_tail}" for i in range(5, 7)]
    )
    (pattern,) = mine_log_patterns(logs, DEPLOY)
    assert pattern.level == "ERROR"
    assert pattern.example.startswith("payment 5 declined")
    assert len(pattern.example) == EXAMPLE_CHARS


def test_level_aliases_are_folded():
    logs = after("WARNING", ["queue depth high"] * 3) + after("Info", ["queue drained"] * 3)
    levels = {p.template: p.level for p in mine_log_patterns(logs, DEPLOY)}
    assert levels == {"queue depth high": "WARN", "queue drained": "INFO"}


def test_ordering_errors_and_warnings_that_changed_come_first_and_info_only_if_new():
    logs = (
        before("INFO", ["GET /health 200"] * 300)
        + after("INFO", ["GET /health 200"] * 300)  # INFO surging: must stay below
        + before("WARN", ["slow consumer lag"] * 30)
        + after("WARN", ["slow consumer lag"] * 10)  # WARN steady
        + before("WARN", ["retrying publish"] * 3)
        + after("WARN", ["retrying publish"] * 40)  # WARN surging
        + after("ERROR", ["payment provider rejected card"] * 8)  # ERROR new
        + after("ERROR", ["java.lang.OutOfMemoryError: Java heap space"] * 3)  # ERROR new, categorized
        + after("INFO", ["feature flag checkout_v2 enabled"] * 2)  # INFO new
    )
    order = [p.template for p in mine_log_patterns(logs, DEPLOY)]
    assert order[0] == "java.lang.OutOfMemoryError: Java heap space"
    assert order[1] == "payment provider rejected card"
    assert order[2] == "retrying publish"
    assert order[3] == "feature flag checkout_v2 enabled"
    assert order.index("slow consumer lag") < order.index("GET /health <NUM>")


def test_limit_caps_the_list_and_keeps_the_most_significant():
    logs = []
    for i in range(30):
        name = chr(97 + i // 26) + chr(97 + i % 26)  # distinct first words: distinct drain3 leaves
        logs += after("ERROR", [f"{name} handler failed"] * (i + 1))
    patterns = mine_log_patterns(logs, DEPLOY, limit=5)
    assert len(patterns) == 5
    assert [p.count_after for p in patterns] == [30, 29, 28, 27, 26]
    assert len(mine_log_patterns(logs, DEPLOY)) == 20


def test_empty_input_and_untrusted_text_is_kept_verbatim():
    assert mine_log_patterns([], DEPLOY) == []
    hostile = "{0.__class__} %s%s%n <script>alert(1)</script> '; DROP TABLE x; -- ${jndi:ldap://e/a}"
    (pattern,) = mine_log_patterns(after("ERROR", [hostile]), DEPLOY)
    assert pattern.example == hostile
    assert pattern.status == "new"


def test_naive_deploy_time_is_taken_as_utc():
    logs = before("INFO", ["a"] * 3) + after("INFO", ["b"] * 3)
    naive = DEPLOY.replace(tzinfo=None)
    statuses = {p.template: p.status for p in mine_log_patterns(logs, naive)}
    assert statuses == {"a": "gone", "b": "new"}


# ---------------------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("java.lang.OutOfMemoryError: Java heap space", "out_of_memory"),
        ("Container app was OOMKilled", "out_of_memory"),
        ("Memory limit exceeded for worker 3", "out_of_memory"),
        ("ERROR: canceling statement due to statement timeout", "db_timeout"),
        ("java.sql.SQLTimeoutException: query timed out", "db_timeout"),
        ("deadlock detected while updating orders", "db_timeout"),
        (
            "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
            "connection_pool",
        ),
        ("FATAL: sorry, too many connections for role app", "connection_pool"),
        ("connection pool exhausted (max=20)", "connection_pool"),
        ("Back-off restarting failed container api in pod api-7d9", "crash_loop"),
        ("pod api-7d9 is in CrashLoopBackOff", "crash_loop"),
        ("main process exited with code 137", "crash_loop"),
        ("panic: runtime error: invalid memory address or nil pointer dereference", "panic"),
        ("Segmentation fault (core dumped)", "panic"),
        ("fatal error: concurrent map writes", "panic"),
        ("upstream returned 503 for GET /inventory", "upstream_5xx"),
        ("502 Bad Gateway from payments", "upstream_5xx"),
        ("inventory-service: Service Unavailable", "upstream_5xx"),
    ],
)
def test_categorize(text, category):
    assert category in CATEGORIES
    assert categorize(text) == category


@pytest.mark.parametrize(
    "text",
    [
        "memory usage at 41%",
        "connection established to db-1",
        "upstream returned 200 in 12ms",
        "exited with code 0",
        "statement executed in 3ms",
        "",
    ],
)
def test_categorize_ignores_benign_lines(text):
    assert categorize(text) is None


def test_category_is_found_in_raw_messages_when_the_template_masks_it():
    logs = after("ERROR", ["worker exited with code 137", "worker exited with code 1"] * 3)
    (pattern,) = mine_log_patterns(logs, DEPLOY)
    assert pattern.template == "worker exited with code <NUM>"
    assert pattern.category == "crash_loop"


# ------------------------------------------------------------------------------------------- speed


def service_logs(n: int) -> list[LogRecord]:
    """n nearly all-distinct service log lines over 40 minutes, deploy at minute 30."""
    rng = random.Random(11)
    start = DEPLOY - timedelta(minutes=30)
    logs = []
    for i in range(n):
        ts = start + timedelta(seconds=i * 2400 / n)
        r = rng.random()
        if r < 0.6:
            trace = f"{rng.getrandbits(64):016x}"
            msg = f"GET /api/v1/orders/{rng.randint(1, 99999)} 200 {rng.randint(1, 900)}ms trace={trace}"
            logs.append(LogRecord(ts, "INFO", msg))
        elif r < 0.8:
            ip = f"10.0.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
            logs.append(LogRecord(ts, "INFO", f"request {uuid.UUID(int=rng.getrandbits(128))} from {ip}"))
        elif r < 0.97 or ts < DEPLOY:
            logs.append(
                LogRecord(ts, "WARN", f"slow query took {rng.randint(1, 900)} ms id={rng.randint(1, 10**6)}")
            )
        else:
            timeout = rng.randint(30000, 30100)
            msg = f"HikariPool-1 - Connection is not available, request timed out after {timeout}ms."
            logs.append(LogRecord(ts, "ERROR", msg))
    return logs


@pytest.mark.slow  # ~3 s alone (half of it generating the lines), more on a busy machine
def test_200k_distinct_lines_mine_into_the_few_templates_they_share():
    """At scale the miner still finds the new error first; how long it takes is
    benchmarks/bench_analysis.py's to say (its "log miner alone" line)."""
    logs = service_logs(200_000)
    patterns = mine_log_patterns(logs, DEPLOY)
    assert patterns[0].category == "connection_pool"
    assert patterns[0].status == "new"
    assert sum(p.count_before + p.count_after for p in patterns) == len(logs)


def test_huge_untrusted_lines_are_mined_and_cut():
    """Lines of 100k characters (a backtracking pattern would hang on them until the test's
    timeout); benchmarks/bench_analysis.py times them."""
    hostile = ["1 " * 50_000, "upstream " * 20_000, "/a" * 50_000, "abcdef" * 20_000]
    patterns = mine_log_patterns(after("ERROR", hostile), DEPLOY)
    assert sum(p.count_after for p in patterns) == len(hostile)
    assert all(len(p.example) <= EXAMPLE_CHARS for p in patterns)
