"""Build the zlib preset dictionary the console compresses its documents with.

    .venv/bin/python scripts/build_document_dictionary.py OUT_FILE

Runs every demo scenario on a fresh embedded engine in a temporary directory (approving the paused
ones as another person), then writes the canonical JSON of the documents those runs stored
(decisions, plans, outcome records, measured outcomes) one after another, most common kinds last,
cut to zlib's 32 KB window. A document compressed with a dictionary can only be read with the same
bytes: a dictionary is frozen once committed (console/storage/dictionaries/), and a new one gets
the next number (the documents table records which one each document used).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WINDOW = 32 * 1024


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CONSOLE_DATA_DIR"] = tmp
        os.environ["CONSOLE_SECRETS"] = str(Path(tmp) / "none.toml")
        from console.access.auth import Identity, Role
        from console.loop.scenarios import list_scenarios
        from console.runtime import embedded_runtime
        from console.settings import load_settings
        from console.storage.codec import canonical, decode

        settings = load_settings()
        runtime = embedded_runtime(settings, synchronous=True, recover=False, expiry_timer_s=None)
        for scenario in list_scenarios(settings.mock_data_dir):
            runtime.engine.launch_scenario(scenario.id, "dictionary")
        for item in runtime.approvals.pending():
            for who in ("carol", "dave"):
                result = runtime.approvals.vote(item["id"], Identity(who, Role.APPROVER), True, "ok")
                if result.status != "recorded":
                    break
        rows = runtime.store.db.conn.execute(
            "SELECT kind, dictionary, body FROM documents WHERE kind != 'snapshot' ORDER BY kind, key"
        ).fetchall()
        runtime.close()
    order = {"measured": 0, "plan": 1, "outcome": 2, "decision": 3}
    rows = sorted(rows, key=lambda r: order.get(r[0], -1))
    texts = [canonical(decode(body, version)) for _, version, body in rows]
    if not texts:
        sys.stderr.write("no document was stored: is the engine working?\n")
        return 1
    dictionary = b"".join(texts)[-WINDOW:]
    Path(argv[0]).write_bytes(dictionary)
    sys.stderr.write(f"{len(dictionary):,} bytes from {len(texts)} documents -> {argv[0]}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
