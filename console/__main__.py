"""Command line: ``python -m console {analyze,run,approve,step,export-training,recover,postmortem,bench}``
and ``python -m console kestra lint [PATH]``.

Exit codes: 0 ok, 1 the operation failed (execution FAILED, resume failed), 2 bad input.
Errors are one line on stderr; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from getpass import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.settings import PROJECT_ROOT, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from console.runtime import EmbeddedRuntime


CLI_TOKEN_ENV = "CONSOLE_CLI_TOKEN"  # noqa: S105 - the variable's name, not a token
"""An API token to decide with, from the environment (instead of --token)."""


class CliError(Exception):
    """Bad input: one line on stderr, exit 2."""


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _read_json(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{source}: cannot read file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CliError(f"{source}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise CliError(f"{source}: not valid JSON: nested too deeply") from None


# -- commands -------------------------------------------------------------------------------------------


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    from console.domain.snapshot import SnapshotError, load_snapshot
    from console.loop import steps

    try:
        snapshot = load_snapshot(args.file)
    except SnapshotError as exc:
        raise CliError(str(exc)) from None
    from console.analysis import analyze

    decision = analyze(snapshot, settings)
    doc = decision.to_dict()
    if not args.rules_only:
        doc = steps.summarize({"snapshot": snapshot.to_dict(), "decision": doc}, settings)["decision"]
    _print_json(doc)
    return 0


def _runtime(settings: Settings) -> EmbeddedRuntime:
    """The embedded engine, synchronous (each command runs to a pause or the end), wired."""
    from console.runtime import embedded_runtime

    return embedded_runtime(settings, synchronous=True)


def _secret_input(prompt: str) -> str:
    """A secret read without echo from the terminal, or the first line of standard input (scripts)."""
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass(prompt)
    return (sys.stdin.readline() if sys.stdin is not None else "").rstrip("\r\n")


def _decider(args: argparse.Namespace, settings: Settings, store: Any, name: str | None) -> Any:
    """Who decides: the person a credential proves (``--token`` or ``CONSOLE_CLI_TOKEN``, or
    ``--password`` for ``--as``), or, where a demo identity is allowed, the name alone
    (:func:`console.access.credentials.cli_identity`)."""
    from console.access.auth import InvalidIdentity, PermissionDenied
    from console.access.credentials import cli_identity

    token = _secret_input("API token: ") if args.token else os.environ.get(CLI_TOKEN_ENV) or None
    if args.token and not token:
        raise CliError("--token: no token was read (type it at the prompt or pipe it on standard input)")
    password = _secret_input(f"Password for {name}: ") if args.password and name else None
    if args.password and not name:
        raise CliError("--password needs the name whose password it is (--as / --decide-as NAME)")
    try:
        return cli_identity(store, settings, name=name, token=token, password=password)
    except (PermissionDenied, InvalidIdentity) as exc:
        raise CliError(str(exc)) from None


def _check_run_options(args: argparse.Namespace) -> str | None:
    """The run's options checked before anything starts; the decider's canonical name, if any."""
    from console.access.auth import InvalidIdentity, validate_name

    deciding = args.approve or args.reject
    if args.reject and not (args.comment or "").strip():
        raise CliError("--reject needs --comment saying why")
    token = args.token or bool(os.environ.get(CLI_TOKEN_ENV))
    if deciding and not args.decide_as and not token:
        raise CliError(
            "--approve/--reject need --decide-as NAME (or a token): whoever launches a run (--as) cannot "
            "decide it alone"
        )
    if (token or args.password) and not deciding:
        raise CliError("--token/--password only serve --approve or --reject")
    try:
        args.as_name = validate_name(args.as_name)
        return validate_name(args.decide_as) if args.decide_as else None
    except InvalidIdentity as exc:
        raise CliError(f"--as/--decide-as: {exc}") from None


def _vote_on_paused(runtime: Any, execution: Any, identity: Any, args: argparse.Namespace) -> Any:
    """Decide the run's approval as ``identity``; the execution after the decision (None when the
    decision was refused, with the reason on stderr)."""
    from console.access.approvals import AlreadyDecided, ApprovalError
    from console.access.auth import PermissionDenied

    approval = runtime.approvals.for_execution(execution.id)
    if approval is None:
        raise CliError(f"execution {execution.id} is paused but has no approval")
    try:
        result = runtime.approvals.vote(approval["id"], identity, bool(args.approve), args.comment or "")
    except (PermissionDenied, AlreadyDecided, ApprovalError, ValueError) as exc:
        _print_json(execution.to_kestra())
        sys.stderr.write(f"error: {exc}\n")
        return None
    sys.stderr.write(f"{result.message}\n")
    return runtime.engine.wait(execution.id)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from console.domain.executions import State
    from console.engines.backend import BackendError

    decider = _check_run_options(args)
    runtime = _runtime(settings)
    deciding = args.approve or args.reject
    identity = _decider(args, settings, runtime.store, decider) if deciding else None
    try:
        execution = runtime.engine.run_sync(scenario=args.scenario, triggered_by=args.as_name)
    except BackendError as exc:
        raise CliError(str(exc)) from None
    if execution.state == State.PAUSED and identity is not None:
        execution = _vote_on_paused(runtime, execution, identity, args)
        if execution is None:
            return 2
    _print_json(execution.to_kestra())
    if execution.state == State.PAUSED:
        approval = runtime.approvals.for_execution(execution.id)
        approval_id = approval["id"] if approval else "?"
        sys.stderr.write(
            f"paused: waiting for approval {approval_id}; decide with "
            f"`python -m console approve {approval_id}` and --as NAME, --token or --password "
            f"(or --reject --comment WHY)\n"
        )
    return 1 if execution.state == State.FAILED else 0


def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    from console.access.approvals import AlreadyDecided, ApprovalError
    from console.access.auth import PermissionDenied

    runtime = _runtime(settings)
    service = runtime.approvals
    identity = _decider(args, settings, runtime.store, args.as_name)
    try:
        result = service.vote(args.approval_id, identity, not args.reject, args.comment or "")
    except (PermissionDenied, AlreadyDecided, ApprovalError, ValueError) as exc:
        raise CliError(str(exc)) from None
    approval = service.get(args.approval_id)
    execution = runtime.engine.wait(approval["execution_id"])
    _print_json(execution.to_kestra())
    sys.stderr.write(f"{result.message}\n")
    return 0 if result.resumed or result.status == "recorded" else 1


def cmd_step(args: argparse.Namespace, settings: Settings) -> int:
    from console.loop.step_io import StepError
    from console.loop.steps import run_step

    data = _read_json(args.input)
    if not isinstance(data, dict):
        raise CliError("step input must be a JSON object")
    try:
        outputs = run_step(args.name, data, settings)
    except StepError as exc:
        raise CliError(str(exc)) from None
    if args.kestra:
        from kestra import Kestra

        Kestra.outputs(outputs)
    else:
        _print_json(outputs)
    return 0


def cmd_export_training(args: argparse.Namespace, settings: Settings) -> int:
    from console.loop.training import export_rows, to_jsonl
    from console.storage import Store

    records = Store(settings.db_path).outcomes.records()
    text = to_jsonl(export_rows(records, args.format))
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
        sys.stderr.write(
            f"{text.count(chr(10))} {args.format} row(s) from {len(records)} record(s) -> {args.out}\n"
        )
    else:
        sys.stdout.write(text)
    return 0


def cmd_recover(args: argparse.Namespace, settings: Settings) -> int:
    report = _runtime(settings).recovery
    _print_json({"recovered": report})
    if not report:
        sys.stderr.write("nothing to recover\n")
    return 0


def _incident_id(store: Any, wanted: str | None) -> str:
    """The execution to write about: ``wanted``, or the newest finished incident (CliError-free: a
    missing incident is reported by the caller, exit 1)."""
    if wanted:
        return wanted
    latest = store.stories.latest_incident_execution_id()
    if latest is not None:
        return latest
    newest = store.outcomes.latest_execution_id()
    if newest is None:
        raise _NoIncident("no incident: no run has finished yet, so there is no postmortem to write")
    verdict = ((store.outcomes.record(newest) or {}).get("decision") or {}).get("verdict") or "unknown"
    raise _NoIncident(
        f"no incident: no finished ROLLBACK or ESCALATE run (the latest run, {newest}, ended {verdict})"
    )


class _NoIncident(Exception):
    """Nothing to write a postmortem about: one line on stderr, exit 1."""


def _engine_execution(settings: Settings, store: Any, execution_id: str) -> Any:
    """The execution as its engine has it: the console's own store (embedded), else Kestra; None
    (with a note on stderr) when Kestra cannot be reached."""
    execution = store.executions.get(execution_id)
    if execution is not None or not settings.kestra_url:
        return execution
    from console.engines.backend import BackendError
    from console.engines.factory import make_backend

    try:
        return make_backend(settings, store, recover=False).get_execution(execution_id)
    except BackendError as exc:
        sys.stderr.write(f"note: the execution's steps are not in the timeline ({exc})\n")
        return None


def cmd_postmortem(args: argparse.Namespace, settings: Settings) -> int:
    from console.loop.postmortem import NoIncident, write_postmortem
    from console.storage import Store

    store = Store(settings.db_path)
    try:
        execution_id = _incident_id(store, None if args.latest else args.execution_id)
    except _NoIncident as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    material = store.stories.incident_material(execution_id)
    execution = _engine_execution(settings, store, execution_id)
    if execution is None and material["deployment"] is None and material["record"] is None:
        raise CliError(f"execution {execution_id} not found")
    try:
        snapshot = store.deployments.snapshot_for_execution(execution_id)
        postmortem = write_postmortem(
            execution, settings, execution_id=execution_id, snapshot=snapshot, **material
        )
    except NoIncident as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if args.out:
        try:
            Path(args.out).write_text(postmortem.markdown, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
        sys.stderr.write(f"postmortem of {execution_id} ({postmortem.author}) -> {args.out}\n")
    else:
        sys.stdout.write(postmortem.markdown)
    for note in postmortem.notes:
        sys.stderr.write(f"note: {note}\n")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    path = PROJECT_ROOT / "benchmarks" / "bench_analysis.py"
    if not path.is_file():
        raise CliError(f"{path.relative_to(PROJECT_ROOT)} does not exist yet")
    module = runpy.run_path(str(path), run_name="console_bench")
    main = module.get("main")
    if not callable(main):
        raise CliError("benchmarks/bench_analysis.py has no main()")
    result = main(list(args.rest))  # never let the benchmark fall back to sys.argv ("bench ...")
    return int(result or 0)


def cmd_kestra_lint(args: argparse.Namespace, settings: Settings | None) -> int:
    """One line per violation on stdout (file, flow, path, rule, message); exit 1 when there is one."""
    from console.engines.kestra.flow_lint import lint_path

    path = Path(args.path)
    if not path.exists():
        raise CliError(f"{path}: no such file or folder")
    violations = lint_path(path)
    for violation in violations:
        sys.stdout.write(f"{violation}\n")
    if violations:
        sys.stderr.write(f"{len(violations)} violation(s) in {path}: Kestra 1.3 would refuse or fail them\n")
        return 1
    sys.stderr.write(f"{path}: no violation\n")
    return 0


def _credential_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--token",
        action="store_true",
        help="decide as an API token's person: the token is read without echo (or from stdin); "
        f"or set {CLI_TOKEN_ENV}",
    )
    p.add_argument(
        "--password",
        action="store_true",
        help="decide as the named user: their password is read without echo (or from stdin)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m console", description="DevOps loop console CLI")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="analyze a snapshot file, print the decision JSON")
    p.add_argument("file")
    p.add_argument("--rules-only", action="store_true", help="skip the LLM narrative")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("run", help="run the whole loop on a scenario with the embedded engine")
    p.add_argument("scenario")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--approve", action="store_true")
    group.add_argument("--reject", action="store_true")
    p.add_argument("--comment", default="")
    p.add_argument("--as", dest="as_name", default="cli-operator", help="who launches the run")
    p.add_argument("--decide-as", dest="decide_as", default=None, help="who decides (never the launcher)")
    _credential_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "approve",
        help="approve (or --reject) a pending approval",
        description="Where the console acts for real, deciding needs a credential: --token (or "
        f"{CLI_TOKEN_ENV}) or --password for --as NAME; --as alone only where demo identity is allowed.",
    )
    p.add_argument("approval_id")
    p.add_argument("--reject", action="store_true")
    p.add_argument("--comment", default="")
    p.add_argument("--as", dest="as_name", default=None, help="who decides (whose password, with --password)")
    _credential_options(p)
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("step", help="run one step of the loop on a JSON input")
    p.add_argument("name")
    p.add_argument("input", nargs="?", default="-", help="a JSON file, or - for stdin")
    p.add_argument("--kestra", action="store_true", help="emit outputs through Kestra.outputs")
    p.set_defaults(func=cmd_step)

    p = sub.add_parser("export-training", help="export outcome records as JSONL")
    p.add_argument(
        "--format",
        choices=["sft", "kto", "dpo", "effectiveness"],  # console.loop.training.EXPORTS
        default="sft",
        help="training rows, or the measured action-effectiveness table",
    )
    p.add_argument("--out")
    p.set_defaults(func=cmd_export_training)

    p = sub.add_parser("recover", help="take over executions a dead console left running")
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser("postmortem", help="print the postmortem of a finished incident (Markdown)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("execution_id", nargs="?", help="the incident's execution id")
    which.add_argument("--latest", action="store_true", help="the newest finished ROLLBACK or ESCALATE run")
    p.add_argument("--out", help="write the Markdown to this file instead of stdout")
    p.set_defaults(func=cmd_postmortem)

    p = sub.add_parser("kestra", help="Kestra tooling that needs no server")
    kestra = p.add_subparsers(dest="kestra_command", required=True)
    lint = kestra.add_parser("lint", help="check flows against Kestra 1.3's rules and the project's, offline")
    lint.add_argument("path", nargs="?", default="flows", help="a folder of flows or one flow file")
    lint.set_defaults(func=cmd_kestra_lint, needs_settings=False)

    p = sub.add_parser("bench", help="run benchmarks/bench_analysis.py (its options follow)")
    p.add_argument("rest", nargs="*", help="options for the benchmark")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["bench"] and raw[1:2] not in (["-h"], ["--help"]):
        # everything after `bench` belongs to the benchmark's own parser
        args = argparse.Namespace(command="bench", rest=raw[1:], func=cmd_bench)
    else:
        args = parser.parse_args(raw)
    try:
        settings = load_settings() if getattr(args, "needs_settings", True) else None
        return args.func(args, settings)
    except (CliError, SettingsError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # the last line of defence: one line, no traceback
        text = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"error: {type(exc).__name__}: {text}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
