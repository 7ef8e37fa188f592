"""The notifications outbox against local receivers: what is posted for each approval event, retries
and their bounds, restarts and concurrent dispatchers, and that no secret ever leaves in a message."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from console.access.approvals import ApprovalService
from console.access.auth import Identity, Role
from console.domain.executions import State
from console.domain.models import parse_time
from console.notify import Dispatcher
from console.runtime import embedded_runtime
from console.settings import Secret
from console.storage import Store
from tests.notify.conftest import PUBLIC_URL, SECRETS, SLACK_PATH, WEBHOOK_TOKEN, dispatcher, paused
from tests.notify.receiver import Receiver, closed_port_url
from tests.waiting import wait_until

BOB = Identity("bob", Role.APPROVER)
CAROL = Identity("carol", Role.APPROVER)


def slack(receiver: Receiver) -> list:
    return [r for r in receiver.received if r.path == SLACK_PATH]


def webhook(receiver: Receiver) -> list:
    return [r for r in receiver.received if r.path.startswith("/hook")]


def slack_text(body: dict) -> str:
    """Everything a Slack reader sees: the fallback text and every block's text."""
    parts = [body["text"]]
    for block in body["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e["text"] for e in block.get("elements", [])]
    return "\n".join(parts)


def test_a_pending_approval_posts_one_message_per_channel_with_its_link_and_fields(runtime, receiver):
    execution, approval = paused(runtime)
    result = dispatcher(runtime).run_once()
    assert (result.queued, result.delivered, result.failed) == (2, 2, 0)
    [s], [w] = slack(receiver), webhook(receiver)

    link = f"{PUBLIC_URL}/approvals?approval={approval['id']}"
    text = slack_text(s.body)
    assert f"<{link}|Open the approval card>" in text
    for fact in ("Approval needed", "payment-service", "v1.2.3", "v1.2.2", "ROLLBACK", "HIGH", "Expires"):
        assert fact in text, fact
    assert "rollback_deployment" in text and "simulated" in text.lower()  # a recorded scenario

    body = w.body
    assert body["event"] == "approval.requested" and body["kind"] == "pending" and body["link"] == link
    assert body["approval"]["id"] == approval["id"]
    assert body["approval"]["execution_id"] == execution.id
    assert body["approval"]["risk"] == "HIGH" and body["approval"]["verdict"] == "ROLLBACK"
    assert body["approval"]["expires_at"] == approval["expires_at"]
    assert body["deployment"]["version"] == "v1.2.3" and body["deployment"]["service"] == "payment-service"
    assert body["simulated"] is True
    assert w.headers["authorization"] == f"Bearer {WEBHOOK_TOKEN}"
    assert "authorization" not in s.headers
    assert s.headers["idempotency-key"] != w.headers["idempotency-key"]

    again = dispatcher(runtime).run_once()
    assert (again.queued, again.delivered) == (0, 0) and len(receiver.received) == 2


def test_a_decision_posts_who_when_and_the_comment(runtime, receiver):
    _, approval = paused(runtime)
    d = dispatcher(runtime)
    d.run_once()
    runtime.approvals.vote(approval["id"], BOB, True, "ship the rollback")
    assert d.run_once().delivered == 2
    s, w = slack(receiver)[-1], webhook(receiver)[-1]
    text = slack_text(s.body)
    assert "Approved by bob" in text and "ship the rollback" in text and "now run" in text
    decided = runtime.store.approvals.get(approval["id"])
    assert w.body["kind"] == "approved" and w.body["event"] == "approval.approved"
    assert w.body["approval"]["decided_by"] == "bob"
    assert w.body["approval"]["decided_at"] is not None
    assert w.body["approval"]["comment"] == "ship the rollback"
    assert w.body["approval"]["status"] == "approved" == decided["status"]
    assert decided["decided_at"][:16].replace("T", " ") in w.body["fields"]["Decided"]


def test_a_vote_short_of_the_quorum_and_the_final_rejection_are_posted(runtime, receiver):
    _, approval = paused(runtime, "database-outage-before-deploy")  # CRITICAL: two approvers
    assert approval["required_approvals"] == 2
    d = dispatcher(runtime)
    d.run_once()
    runtime.approvals.vote(approval["id"], BOB, True, "failover looks right")
    runtime.approvals.vote(approval["id"], CAROL, False, "the primary is back")
    d.run_once()
    kinds = [w.body["kind"] for w in webhook(receiver)]
    assert kinds == ["pending", "vote", "rejected"]
    vote, rejected = webhook(receiver)[1].body, webhook(receiver)[2].body
    assert vote["title"].startswith("bob approved") and "(1 of 2)" in vote["title"]
    assert "1 more approver(s) needed" in vote["text"]
    assert rejected["approval"]["decided_by"] == "carol"
    assert "Nothing risky runs" in rejected["text"] and "the primary is back" in rejected["text"]
    assert [v["actor"] for v in rejected["approval"]["votes"]] == ["bob", "carol"]


def test_expired_and_cancelled_approvals_post_their_result(notify_settings, receiver, approval_clock):
    rt = embedded_runtime(notify_settings, synchronous=True, approval_clock=approval_clock)
    try:
        first, _ = paused(rt)
        approval_clock.advance(minutes=notify_settings.approval_timeout_minutes + 1)
        rt.approvals.expire_overdue()
        second, approval = paused(rt)
        rt.engine.kill(second.id, by="carol")
        assert rt.store.approvals.get(approval["id"])["status"] == "cancelled"
        dispatcher(rt).run_once()
    finally:
        rt.close()
    kinds = [w.body["kind"] for w in webhook(receiver)]
    assert kinds == ["pending", "expired", "pending", "cancelled"]
    expired, cancelled = webhook(receiver)[1].body, webhook(receiver)[3].body
    assert expired["title"].startswith("Expired: nobody decided") and "did not run" in expired["text"]
    assert expired["approval"]["execution_id"] == first.id
    assert (
        cancelled["approval"]["execution_id"] == second.id
        and "stopped before a decision" in cancelled["text"]
    )
    assert "Expired" in slack_text(slack(receiver)[1].body)


def test_untrusted_text_cannot_make_links_or_mentions_in_slack(runtime, receiver):
    _, approval = paused(runtime)
    d = dispatcher(runtime)
    d.run_once()
    comment = "no <!channel> <@U024BE7LH> & <https://evil.example/login|click here> *now*"
    runtime.approvals.vote(approval["id"], BOB, False, comment)
    d.run_once()
    body = slack(receiver)[-1].body
    raw = json.dumps(body)
    assert "<!channel>" not in raw and "<@U024BE7LH>" not in raw and "<https://evil" not in raw
    text = slack_text(body)
    assert (
        "&lt;!channel&gt;" in text
        and "&amp;" in text
        and "&lt;https://evil.example/login|click here&gt;" in text
    )
    # the only link left is the console's own
    links = [part for part in text.split("<")[1:]]
    assert links and all(part.startswith(f"{PUBLIC_URL}/approvals?approval=") for part in links)
    # the generic webhook gets the text as it was written (JSON, no markup)
    assert webhook(receiver)[-1].body["approval"]["comment"] == comment


def test_a_500_then_200_is_delivered_once_after_a_retry(runtime, receiver):
    receiver.then(500)  # the first POST (slack) fails once
    paused(runtime)
    d = dispatcher(runtime, backoff_s=30)
    before = datetime.now(UTC)
    first = d.run_once()
    after = datetime.now(UTC)
    assert (first.delivered, first.retrying) == (1, 1)
    [row] = runtime.store.notifications.list(statuses=["pending"])
    assert row["channel"] == "slack" and row["attempts"] == 1 and row["last_error"].startswith("HTTP 500")
    due = parse_time(row["next_attempt_at"])
    assert before + timedelta(seconds=30) <= due <= after + timedelta(seconds=30)  # the backoff
    assert d.run_once(now=due - timedelta(seconds=1)).delivered == 0  # not due yet
    assert d.run_once(now=due).delivered == 1
    for _ in range(3):
        d.run_once(now=due + timedelta(hours=1))
    attempts = slack(receiver)
    assert len(attempts) == 2 and attempts[0].raw == attempts[1].raw
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]
    assert len(webhook(receiver)) == 1
    rows = runtime.store.notifications.list()
    assert {r["status"] for r in rows} == {"delivered"}
    assert {(r["channel"], r["attempts"]) for r in rows} == {("slack", 2), ("webhook", 1)}


def test_a_4xx_is_final_at_once_and_a_429_is_retried(runtime, receiver):
    receiver.then(404, 429, headers={"Retry-After": "0"})
    paused(runtime)
    d = dispatcher(runtime, backoff_s=30)
    result = d.run_once()
    assert (result.failed, result.retrying) == (1, 1)
    failed = runtime.store.notifications.list(statuses=["failed"])[0]
    assert failed["attempts"] == 1 and failed["last_error"] == "HTTP 404: answer 404"
    [retrying] = runtime.store.notifications.list(statuses=["pending"])
    assert d.run_once(now=parse_time(retrying["next_attempt_at"])).delivered == 1
    assert len(receiver.received) == 3


def test_a_receiver_that_is_down_gets_bounded_attempts_and_a_failed_status(notify_settings, receiver, caplog):
    down = replace(notify_settings, notify_slack_webhook_url=Secret(closed_port_url()))
    rt = embedded_runtime(down, synchronous=True)
    try:
        paused(rt)
        d = dispatcher(rt, backoff_s=30)
        caplog.set_level(logging.INFO, logger="console.notify")
        d.run_once()
        rounds = 1
        while (waiting := rt.store.notifications.list(statuses=["pending"])) and rounds < 20:
            d.run_once(now=max(parse_time(n["next_attempt_at"]) for n in waiting))  # when the backoff ends
            rounds += 1
        [failed] = rt.store.notifications.list(statuses=["failed"])
    finally:
        rt.close()
    assert failed["channel"] == "slack" and failed["attempts"] == down.notify_max_attempts == 3
    assert failed["last_error"] == "gave up after 3 attempts: connection refused"
    assert rounds == 3  # one attempt a round, none left over
    assert len(webhook(receiver)) == 1  # the other channel is not held up
    assert "127.0.0.1" not in failed["last_error"]
    assert not any(secret in caplog.text for secret in SECRETS)
    assert "gave up after 3 attempts: connection refused" in caplog.text


def test_delivery_never_holds_up_the_loop(notify_settings):
    """A receiver that never answers (the dispatcher gives up after its 1 s timeout): with the
    dispatcher running in its thread, the run pauses, is approved and finishes while the delivery is
    still in flight, and closing the console stops the dispatcher."""
    with Receiver(hold=True) as stuck:
        settings = replace(
            notify_settings,
            notify_slack_webhook_url=Secret(stuck.url + SLACK_PATH),
            notify_webhook_url=Secret(""),
        )
        rt = embedded_runtime(settings, max_workers=2, notify_poll_s=0.05)
        try:
            assert rt.notifier is not None and rt.notifier.running
            execution_id = rt.engine.launch_scenario("memory-leak", "alice")
            approval = wait_until(
                lambda: rt.store.approvals.for_execution(execution_id), 20, what="the pause"
            )
            stuck.wait_for(1)  # the announcement of the pause is in flight, its answer held
            rt.approvals.vote(approval["id"], BOB, True, "go")
            execution = rt.engine.wait(execution_id, timeout=20)
            assert execution.state == State.SUCCESS
            assert stuck.answered == 0  # the run finished while the delivery was still waiting
            assert rt.store.notifications.list(statuses=["delivered"]) == []
        finally:
            rt.close()
    assert not rt.notifier.running


def test_a_restarted_dispatcher_sends_nothing_twice_and_carries_on(runtime, receiver, notify_settings):
    _, approval = paused(runtime)
    first = dispatcher(runtime)
    first.run_once()
    assert len(receiver.received) == 2

    store = Store(notify_settings.db_path)  # another process: its own connections, the same file
    try:
        second = Dispatcher(store, notify_settings, backoff_s=0.02)
        assert second.run_once().queued == 0
        assert len(receiver.received) == 2
        ApprovalService(store, runtime.engine, notify_settings).vote(approval["id"], BOB, True, "")
        assert second.run_once().delivered == 2
        assert [w.body["kind"] for w in webhook(receiver)] == ["pending", "approved"]
    finally:
        store.close()


def test_a_message_claimed_by_a_dispatcher_that_died_is_sent_once_by_the_next(runtime, receiver):
    paused(runtime)
    dead = dispatcher(runtime)
    dead._enqueue(None)  # queued, then claimed with a lease that has run out: the process died mid-send
    claimed = runtime.store.notifications.claim(lease_s=-1)
    assert len(claimed) == 2 and not receiver.received
    dispatcher(runtime).run_once()
    dispatcher(runtime).run_once()
    assert len(slack(receiver)) == 1 and len(webhook(receiver)) == 1
    assert {r["attempts"] for r in runtime.store.notifications.list()} == {2}


def test_two_dispatchers_on_one_file_deliver_each_message_once(runtime, receiver, notify_settings):
    for _ in range(4):
        paused(runtime)
    stores = [Store(notify_settings.db_path) for _ in range(2)]
    dispatchers = [Dispatcher(s, notify_settings) for s in stores]
    barrier = threading.Barrier(2)

    def work(d: Dispatcher) -> None:
        barrier.wait()
        for _ in range(3):
            d.run_once()

    threads = [threading.Thread(target=work, args=(d,)) for d in dispatchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for s in stores:
        s.close()
    keys = [r.headers["idempotency-key"] for r in receiver.received]
    assert len(keys) == 8 and len(set(keys)) == 8


def test_no_secret_appears_in_any_message_the_store_or_the_logs(runtime, receiver, notify_settings, caplog):
    caplog.set_level(logging.DEBUG)
    _, approval = paused(runtime)
    d = dispatcher(runtime)
    d.run_once()
    leaky = (
        f"see http://admin:{notify_settings.kestra_password.get()}@kestra.local/ui "
        f"and {notify_settings.notify_slack_webhook_url.get()} with Bearer {WEBHOOK_TOKEN}"
    )
    runtime.approvals.vote(approval["id"], BOB, False, leaky)
    d.run_once()
    assert len(receiver.received) == 4
    everything = [r.raw.decode() for r in receiver.received]
    everything += [json.dumps(row["payload"]) for row in runtime.store.notifications.list()]
    everything += [row["last_error"] or "" for row in runtime.store.notifications.list()]
    everything.append(caplog.text)
    for text in everything:
        for secret in SECRETS:
            assert secret not in text
    rejected = webhook(receiver)[-1].body["approval"]["comment"]
    assert "http://***@kestra.local/ui" in rejected and "hooks" not in rejected
    # the secret only travels where it belongs: the webhook's Authorization header
    assert all("authorization" not in r.headers for r in slack(receiver))
    assert {r.headers["authorization"] for r in webhook(receiver)} == {f"Bearer {WEBHOOK_TOKEN}"}
    # and the URL's own credentials were dropped in favour of the token
    assert all(r.path.startswith("/hook?token=") for r in webhook(receiver))


def test_an_event_older_than_a_day_when_first_seen_is_not_announced(runtime, receiver):
    from datetime import UTC, datetime, timedelta

    paused(runtime)
    result = dispatcher(runtime).run_once(now=datetime.now(UTC) + timedelta(days=2))
    assert result.queued == 0 and not receiver.received
    assert dispatcher(runtime).run_once().queued == 0  # the cursor moved past it


def test_a_channel_removed_from_the_settings_fails_its_queued_messages(runtime, receiver, notify_settings):
    paused(runtime)
    dispatcher(runtime)._enqueue(None)
    only_slack = replace(notify_settings, notify_webhook_url=Secret(""))
    dispatcher(runtime, only_slack).run_once()
    [failed] = runtime.store.notifications.list(statuses=["failed"])
    assert (
        failed["channel"] == "webhook"
        and failed["last_error"] == "channel webhook is not configured any more"
    )
    assert len(slack(receiver)) == 1 and not webhook(receiver)


@pytest.mark.parametrize("public_url", ["", "https://console.example.com/"])
def test_the_deep_link_follows_the_public_url(runtime, receiver, notify_settings, public_url):
    _, approval = paused(runtime)
    dispatcher(runtime, replace(notify_settings, public_url=public_url)).run_once()
    body = webhook(receiver)[0].body
    if public_url:
        assert body["link"] == f"https://console.example.com/approvals?approval={approval['id']}"
    else:
        assert body["link"] is None and "<http" not in slack_text(slack(receiver)[0].body)


def test_the_cursor_moves_past_the_events_it_does_not_announce(runtime, receiver):
    runtime.engine.run_sync(scenario="healthy-hotfix", triggered_by="alice")  # no approval
    assert dispatcher(runtime).run_once().queued == 0
    last = runtime.store.audit.trail(limit=1)[0]["seq"]
    assert runtime.store.notifications.cursor("approvals") == last and not receiver.received


def test_a_vote_read_after_the_quorum_still_says_how_many_had_voted_then(runtime, receiver):
    _, approval = paused(runtime, "database-outage-before-deploy")
    runtime.approvals.vote(approval["id"], BOB, True, "")
    runtime.approvals.vote(approval["id"], CAROL, True, "")
    dispatcher(runtime).run_once()  # the outbox reads all three events after the fact
    bodies = [w.body for w in webhook(receiver)]
    assert [b["kind"] for b in bodies] == ["pending", "vote", "approved"]
    assert "(1 of 2)" in bodies[1]["title"] and [v["actor"] for v in bodies[1]["approval"]["votes"]] == [
        "bob"
    ]
    assert bodies[2]["approval"]["decided_by"] == "bob, carol"


def test_a_superseded_approval_posts_that_nothing_ran_and_why(runtime, receiver):
    _, approval = paused(runtime)
    assert runtime.approvals.supersede(approval, "checkout-service now runs v2.0.1, deployed after it")
    dispatcher(runtime).run_once()
    kinds = [w.body["kind"] for w in webhook(receiver)]
    assert kinds == ["pending", "superseded"]
    body = webhook(receiver)[1].body
    assert body["title"].startswith("Superseded: ")
    assert "Closed without running: checkout-service now runs v2.0.1, deployed after it." in body["text"]
    assert body["approval"]["status"] == "superseded"
    assert body["approval"]["decided_by"] == "system:superseded"
    assert "Superseded" in slack_text(slack(receiver)[1].body)
