"""Log template mining (drain3), before/after counts per template, and root-cause signatures.

How the before/after comparison works
-------------------------------------
All lines (before and after the deploy) are mined together so that one template covers the same
kind of line on both sides. Each template then gets a count before and a count after ``deployed_at``.
The two windows rarely last the same time, so counts are compared as **rates per minute**:

* baseline window = ``[first log timestamp, deployed_at)``,
* verification window = ``[deployed_at, last log timestamp]``,

each with a floor of one minute so a handful of lines a few seconds apart does not look like a huge
rate. Callers that know the real window bounds (e.g. the snapshot covered 30 min before and 10 min
after even if the service was quiet) can pass ``before_minutes`` / ``after_minutes`` instead.

Speed
-----
drain3 is pure Python and its masker runs every regex over every line, which alone costs ~4 s for
200k distinct lines here. ``LogMiner`` produces exactly the same masked text much faster:

1. identical raw messages are masked once;
2. the "pre-masks" (timestamps, UUIDs, block ids, hex ids: the tokens that make lines unique) run
   on each distinct message, each skipped when a required substring is absent;
3. the other masks run once per *digit shape* (digits 1-9 folded to 1) when that provably gives the
   same result (see ``LogMiner.mask_all``);
4. identical masked messages go to drain3 once, their line counts kept on the side. Each distinct
   masked message belongs to the cluster drain3 put it in when it was added (as logparser's Drain
   assigns lines), so the grouping is deterministic.

``benchmarks/bench_loghub.py`` prints the figures (200k lines in ~1.2 s, all distinct).

Log text is untrusted: it is only matched against regular expressions and stored as strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

from console.domain.models import LogPattern, LogRecord

# --------------------------------------------------------------------------------------------------
# drain3 configuration

# Masks are applied in order (drain3's LogMasker runs them one after the other), so the more specific
# shapes come before the generic number mask that would otherwise eat their digits.
#
# PRE_MASKS remove the high-entropy tokens (timestamps, UUIDs, hex ids) that make otherwise identical
# lines unique; they run on every distinct message. MASKS run once per *digit shape* (see
# ``LogMiner.mask_all``), which is where most of the speed comes from.
DEFAULT_PRE_MASKS: tuple[tuple[str, str], ...] = (
    # ISO-8601 timestamps embedded in a message
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "TS"),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\bblk_-?\d+\b", "BLK"),  # HDFS block ids, before ID would take their digits
    (r"\b0[xX][0-9a-fA-F]+\b", "HEX"),
    # long hex identifiers (trace ids, commit shas, container ids) that contain at least one digit
    (r"\b(?=[0-9a-fA-F]{12})[a-fA-F]*\d[0-9a-fA-F]*\b", "ID"),
)
DEFAULT_MASKS: tuple[tuple[str, str], ...] = (
    # URLs and paths may contain ids masked above (<ID>), hence '<' and '>' in their character sets.
    (r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"']+", "URL"),
    (r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "TIME"),
    (r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])", "IP"),
    # absolute file / URL paths with at least two segments (/var/lib/x, /api/v1/orders/42)
    (r"(?<![\w/.:<>])(?:/[\w.@%+~<>-]+){2,}/?", "PATH"),
    (
        r"(?<![\w.])\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds|m|min|mins|minutes|h|hr|hours)\b",
        "DURATION",
    ),
    (r"(?<![\w.])\d+(?:\.\d+)?\s?(?:[KMGT]i?B|B|bytes)\b", "SIZE"),
    (r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])", "NUM"),
)


@dataclass(frozen=True)
class MinerParams:
    """Drain parameters. The defaults suit service logs (short, structured messages).

    drain3 masks with ``pre_masks`` then ``masks``, in that order.
    """

    depth: int = 4
    sim_th: float = 0.4
    max_children: int = 100
    parametrize_numeric_tokens: bool = True
    pre_masks: tuple[tuple[str, str], ...] = DEFAULT_PRE_MASKS
    masks: tuple[tuple[str, str], ...] = DEFAULT_MASKS
    extra_delimiters: tuple[str, ...] = ()
    max_clusters: int | None = None


def make_template_miner(params: MinerParams | None = None) -> TemplateMiner:
    """A drain3 miner configured entirely in code: no drain3.ini, no persistence, no profiling."""
    p = params or MinerParams()
    config = TemplateMinerConfig()
    config.drain_depth = p.depth
    config.drain_sim_th = p.sim_th
    config.drain_max_children = p.max_children
    config.drain_max_clusters = p.max_clusters
    config.drain_extra_delimiters = list(p.extra_delimiters)
    config.parametrize_numeric_tokens = p.parametrize_numeric_tokens
    config.masking_instructions = [
        MaskingInstruction(pattern, name) for pattern, name in (*p.pre_masks, *p.masks)
    ]
    config.mask_prefix = "<"
    config.mask_suffix = ">"
    config.profiling_enabled = False
    return TemplateMiner(persistence_handler=None, config=config)


# Digits 1-9 all map to "1"; "0" is kept so a literal 0 in a pattern (0x...) still sees the same text.
# (bytes.translate is ~10x faster than str.translate; the shape is only used as a dict key.)
_SHAPE = bytes.maketrans(b"23456789", b"11111111")

# A substring one of which must be in the text for a default pattern to match at all: a cheap
# `in` test skips a regex scan that could not change the text, so the output is unchanged.
_GATES: dict[str, tuple[str, ...]] = {
    DEFAULT_PRE_MASKS[0][0]: ("-",),
    DEFAULT_PRE_MASKS[1][0]: ("-",),
    DEFAULT_PRE_MASKS[2][0]: ("blk_",),
    DEFAULT_PRE_MASKS[3][0]: ("0x", "0X"),
    DEFAULT_MASKS[0][0]: ("://",),
    DEFAULT_MASKS[1][0]: (":",),
    DEFAULT_MASKS[2][0]: (".",),
    DEFAULT_MASKS[3][0]: ("/",),
}
_NONZERO_DIGIT = re.compile(r"[1-9]")


def digit_agnostic(pattern: str) -> bool:
    """True if the regex cannot tell the digits 1-9 apart (no literal 1-9, no back-reference).

    Only then do two messages that differ in those digits alone get masked at the same places.
    """
    stripped = re.sub(r"\{\d*,?\d*\}", "", pattern)
    stripped = stripped.replace(r"\d", "").replace("0-9", "").replace("1-9", "")
    return _NONZERO_DIGIT.search(stripped) is None


@dataclass
class Cluster:
    """One mined template and how many lines fell into it."""

    cluster_id: int
    template: str = ""
    line_count: int = 0


@dataclass
class MiningResult:
    clusters: dict[int, Cluster] = field(default_factory=dict)
    cluster_of_masked: dict[str, int] = field(default_factory=dict)
    masked_of_raw: dict[str, str] = field(default_factory=dict)

    def cluster_of(self, raw: str) -> int:
        return self.cluster_of_masked[self.masked_of_raw[raw]]


def _apply(masks: Sequence[tuple[re.Pattern[str], str, tuple[str, ...]]], text: str) -> str:
    for regex, repl, gate in masks:
        if gate and not any(g in text for g in gate):
            continue
        text = regex.sub(repl, text)
    return text


class LogMiner:
    """Mine templates over a batch of messages with drain3, deduplicating before drain3 sees them."""

    def __init__(self, params: MinerParams | None = None) -> None:
        self.params = params or MinerParams()
        self.miner = make_template_miner(self.params)
        prefix, suffix = self.miner.config.mask_prefix, self.miner.config.mask_suffix
        self._pre = [
            (re.compile(p), f"{prefix}{name}{suffix}", _GATES.get(p, ())) for p, name in self.params.pre_masks
        ]
        self._post = [
            (re.compile(p), f"{prefix}{name}{suffix}", _GATES.get(p, ())) for p, name in self.params.masks
        ]
        self._shape_ok = all(digit_agnostic(p) for p, _ in self.params.masks) and not any(
            _NONZERO_DIGIT.search(f"{prefix}{name}{suffix}") for _, name in self.params.masks
        )

    def mask(self, message: str) -> str:
        """drain3's own masking of one message (the reference ``mask_all`` must agree with)."""
        return self.miner.masker.mask(message)

    def mask_all(self, messages: Iterable[str]) -> dict[str, str]:
        """Masked text of every distinct message, equal to ``mask`` but much faster on real logs.

        Pre-masks run once per distinct message. The result is then keyed by its *digit shape*
        (digits 1-9 replaced by 1): if masking the first message of a shape consumed every digit
        1-9, every other message of that shape masks to the same text, because the remaining
        patterns are digit-agnostic (checked by :func:`digit_agnostic`); otherwise each message of
        the shape is masked on its own.
        """
        out: dict[str, str] = {}
        pre = self._pre
        post = self._post
        by_shape: dict[bytes, str | None] = {}
        shape_ok = self._shape_ok
        for raw in messages:
            if raw in out:
                continue
            text = _apply(pre, raw)
            if not shape_ok:
                out[raw] = _apply(post, text)
                continue
            shape = text.encode("utf-8", "surrogatepass").translate(_SHAPE)
            masked = by_shape.get(shape)
            if masked is None:
                masked = _apply(post, text)
                # reusable for the whole shape only if no digit 1-9 survived masking
                by_shape[shape] = None if _NONZERO_DIGIT.search(masked) else masked
            out[raw] = masked
        return out

    def mine(self, messages: Iterable[str]) -> MiningResult:
        result = MiningResult()
        materialized = messages if isinstance(messages, list) else list(messages)
        masked_of_raw = self.mask_all(materialized)
        result.masked_of_raw = masked_of_raw
        masked_counts: dict[str, int] = {}
        for raw in materialized:
            masked = masked_of_raw[raw]
            masked_counts[masked] = masked_counts.get(masked, 0) + 1
        drain = self.miner.drain
        for masked, count in masked_counts.items():  # dicts keep first-appearance order
            cluster, _ = drain.add_log_message(masked)
            result.cluster_of_masked[masked] = cluster.cluster_id
            entry = result.clusters.get(cluster.cluster_id)
            if entry is None:
                entry = result.clusters[cluster.cluster_id] = Cluster(cluster.cluster_id)
            entry.line_count += count
        for cluster_id, entry in result.clusters.items():
            entry.template = drain.id_to_cluster[cluster_id].get_template()
        return result


# --------------------------------------------------------------------------------------------------
# Signatures: template/message text -> root-cause category

_SIGNATURES: tuple[tuple[str, str], ...] = (
    (
        "out_of_memory",
        r"OutOfMemoryError|OOMKilled|OOM[- ]?kill|Java heap space|memory limit exceeded|"
        r"out of memory|Cannot allocate memory|GC overhead limit exceeded|exceeded memory limit",
    ),
    (
        "crash_loop",
        r"CrashLoopBackOff|Back-off restarting failed container|exited with (?:exit )?code (?:137|139)\b|"
        r"exit code (?:137|139)\b|restart(?:ing)? loop",
    ),
    (
        "connection_pool",
        r"HikariPool.{0,80}Connection is not available|Connection is not available, request timed out|"
        r"pool (?:is )?exhausted|connection pool exhausted|too many connections|"
        r"remaining connection slots are reserved|Timeout waiting for (?:idle object|connection from pool)|"
        r"Cannot get a connection, pool error",
    ),
    (
        "db_timeout",
        r"statement timeout|canceling statement due to statement timeout|query timed out|"
        r"SQLTimeoutException|QueryTimeoutException|Lock wait timeout exceeded|deadlock detected|"
        r"Deadlock found|database timeout|db timeout",
    ),
    (
        "panic",
        r"\bpanic:|goroutine \d+ \[running\]|segmentation fault|SIGSEGV|\bfatal error\b|"
        r"unhandled exception|uncaught exception|core dumped",
    ),
    (
        "upstream_5xx",
        r"upstream (?:\S+ ){0,3}(?:returned|responded with|status|error)\D{0,20}5\d\d\b|"
        r"\b(?:502|503|504) (?:Bad Gateway|Service Unavailable|Gateway Time-?out)\b|"
        r"bad gateway|service unavailable|gateway time-?out|upstream connect error|"
        r"no healthy upstream|upstream (?:request )?timeout",
    ),
)
_SIGNATURE_RES = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _SIGNATURES)
CATEGORIES: tuple[str, ...] = tuple(name for name, _ in _SIGNATURES)


CATEGORIZE_CHARS = 4096
"""Only the head of a message is searched: signatures sit near the top (first line of a stack
trace), and a huge untrusted line must not make the analysis slow."""


def categorize(text: str) -> str | None:
    """Root-cause category of a log template or message, or None. First matching signature wins."""
    if not text:
        return None
    text = text[:CATEGORIZE_CHARS]
    for name, regex in _SIGNATURE_RES:
        if regex.search(text):
            return name
    return None


# --------------------------------------------------------------------------------------------------
# Before/after comparison

_LEVEL_RANK = {
    "TRACE": 0,
    "DEBUG": 0,
    "INFO": 1,
    "NOTICE": 1,
    "WARN": 2,
    "WARNING": 2,
    "ERROR": 3,
    "ERR": 3,
    "SEVERE": 3,
    "CRITICAL": 4,
    "CRIT": 4,
    "FATAL": 4,
    "ALERT": 4,
    "EMERG": 4,
    "EMERGENCY": 4,
    "PANIC": 4,
}

SURGE_RATIO = 3.0
"""After-rate must be at least this many times the before-rate to be a surge..."""
SURGE_MIN_COUNT = 5
"""...with at least this many lines after the deploy (one line is never a surge)."""
DEFAULT_LIMIT = 20
EXAMPLE_CHARS = 300
MIN_WINDOW_MINUTES = 1.0


_LEVEL_ALIASES = {
    "WARNING": "WARN",
    "ERR": "ERROR",
    "SEVERE": "ERROR",
    "CRIT": "CRITICAL",
    "EMERGENCY": "EMERG",
}


def canonical_level(level: str) -> str:
    """Upper-case level name with common aliases folded (WARNING -> WARN, ERR -> ERROR)."""
    name = level.strip().upper() or "INFO"
    return _LEVEL_ALIASES.get(name, name)


def level_rank(level: str) -> int:
    """Severity rank of a level name; unknown names count as INFO."""
    return _LEVEL_RANK.get(level.strip().upper(), 1)


def classify(count_before: int, count_after: int, rate_before: float, rate_after: float) -> str:
    if count_before == 0 and count_after > 0:
        return "new"
    if count_after == 0 and count_before > 0:
        return "gone"
    if count_after >= SURGE_MIN_COUNT and rate_after >= SURGE_RATIO * rate_before:
        return "surging"
    return "steady"


@dataclass
class _Acc:
    level: str = "INFO"
    rank: int = -1
    before: int = 0
    after: int = 0
    example: str = ""
    raw_examples: dict[str, str] = field(default_factory=dict)
    """One raw message per distinct masked message, for signature matching."""


def _window_minutes(
    logs: Sequence[LogRecord], deployed_at: datetime, before: float | None, after: float | None
) -> tuple[float, float]:
    if before is None or after is None:
        first = min(r.ts for r in logs)
        last = max(r.ts for r in logs)
        if before is None:
            before = (deployed_at - first).total_seconds() / 60.0
        if after is None:
            after = (last - deployed_at).total_seconds() / 60.0
    return max(before, MIN_WINDOW_MINUTES), max(after, MIN_WINDOW_MINUTES)


def _significance(status: str, rate_before: float, rate_after: float) -> float:
    if status in ("new", "surging"):
        return rate_after - rate_before
    if status == "gone":
        return rate_before
    return rate_after


def _tier(status: str, rank: int) -> int:
    """0: ERROR/WARN new or surging; 1: INFO new; 2: other ERROR/WARN; 3: the rest of INFO/DEBUG."""
    if status in ("new", "surging") and rank >= 2:
        return 0
    if status == "new":
        return 1
    if rank >= 2:
        return 2
    return 3


def mine_log_patterns(
    logs: list[LogRecord],
    deployed_at: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    before_minutes: float | None = None,
    after_minutes: float | None = None,
    params: MinerParams | None = None,
) -> list[LogPattern]:
    """Templates of ``logs`` with before/after counts and a status, most significant first, at most ``limit``.

    Order: ERROR/WARN templates that are new or surging (most severe level, then those with a known
    root-cause category, then the largest rate increase); then new INFO templates; then other
    ERROR/WARN templates; then the remaining INFO/DEBUG templates.
    """
    if not logs:
        return []
    if deployed_at.tzinfo is None:  # same convention as models.parse_time: naive means UTC
        deployed_at = deployed_at.replace(tzinfo=UTC)
    miner = LogMiner(params)
    result = miner.mine([r.message for r in logs])
    accs: dict[int, _Acc] = {}
    masked_of_raw = result.masked_of_raw
    cluster_of_masked = result.cluster_of_masked
    levels: dict[str, tuple[int, str]] = {}
    for rec in logs:
        masked = masked_of_raw[rec.message]
        cid = cluster_of_masked[masked]
        acc = accs.get(cid)
        if acc is None:
            acc = accs[cid] = _Acc()
        level = levels.get(rec.level)
        if level is None:
            level = levels[rec.level] = (level_rank(rec.level), canonical_level(rec.level))
        if level[0] > acc.rank:
            acc.rank, acc.level = level
            acc.example = rec.message[:EXAMPLE_CHARS]
        if rec.ts < deployed_at:
            acc.before += 1
        else:
            acc.after += 1
        if masked not in acc.raw_examples and len(acc.raw_examples) < 50:
            acc.raw_examples[masked] = rec.message

    minutes_before, minutes_after = _window_minutes(logs, deployed_at, before_minutes, after_minutes)
    ranked: list[tuple[tuple, LogPattern]] = []
    for cid, acc in accs.items():
        template = result.clusters[cid].template
        rate_before = acc.before / minutes_before
        rate_after = acc.after / minutes_after
        status = classify(acc.before, acc.after, rate_before, rate_after)
        category = categorize(template)
        if category is None:
            for raw in acc.raw_examples.values():
                category = categorize(raw)
                if category:
                    break
        pattern = LogPattern(
            template=template,
            level=acc.level,
            count_before=acc.before,
            count_after=acc.after,
            status=status,
            category=category,
            example=acc.example,
        )
        key = (
            _tier(status, acc.rank),
            -acc.rank,
            0 if category else 1,
            -_significance(status, rate_before, rate_after),
            -(acc.before + acc.after),
            template,
        )
        ranked.append((key, pattern))
    ranked.sort(key=lambda item: item[0])
    return [pattern for _, pattern in ranked[: max(limit, 0)]]
