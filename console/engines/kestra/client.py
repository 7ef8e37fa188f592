"""Kestra REST client (``requests`` only) for the open-source server, 1.3 LTS and 2.x.

Paths are tenant-aware (``/api/v1/{tenant}/...``; the open-source tenant is ``main``). The client
reads the server version once from ``GET /api/v1/configs`` and uses the 2.0 paths where they
differ (``/actions/resume``, ``/actions/kill``, ``/outputs/{executionId}``).

Every call has a timeout. Only idempotent reads (GET) are retried (urllib3's ``Retry`` mounted
through a ``requests`` adapter: connection failures, read timeouts and 502/503/504, a bounded number
of times with exponential backoff); a trigger, resume or kill is never sent twice. Every failure is a
:class:`KestraError` whose message is one line fit for an operator and never contains the password
or the token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
import yaml
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

from console.domain.config_reader import load_yaml
from console.domain.executions import Execution, LogEntry, MalformedExecutionError, State
from console.engines.kestra.rules import KILL_MEDIA_TYPE
from console.settings import Secret

DEFAULT_SORT = "state.startDate:desc"


class KestraError(RuntimeError):
    """Base of every client failure; ``str(exc)`` is one line fit for an operator."""

    status: int | None = None


class KestraAuthError(KestraError):
    """401/403: missing, wrong or insufficient credentials."""


class KestraNotFound(KestraError):
    """404: the flow, execution or endpoint does not exist."""


class KestraConflict(KestraError):
    """409: the request conflicts with the current state (e.g. resuming a non-PAUSED execution)."""


class KestraBadRequest(KestraError):
    """400/422: Kestra refused the request content (invalid inputs, invalid flow)."""


class KestraServerError(KestraError):
    """5xx: Kestra failed while handling the request."""


class KestraTimeout(KestraError):
    """No answer within the timeout."""


class KestraUnreachable(KestraError):
    """Connection refused, DNS failure, TLS failure: the server cannot be reached."""


class KestraProtocolError(KestraError):
    """The answer is not the JSON Kestra documents (malformed JSON or unexpected shape)."""


@dataclass(frozen=True)
class FlowRef:
    namespace: str
    id: str

    def __str__(self) -> str:
        return f"{self.namespace}.{self.id}"


def flow_ref(source: str) -> FlowRef:
    """Namespace and id of a flow's YAML source; KestraBadRequest if they are missing."""
    try:
        doc = load_yaml(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KestraBadRequest(f"flow YAML does not parse{where}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("id"), str)
        or not isinstance(doc.get("namespace"), str)
    ):
        raise KestraBadRequest("flow YAML must be a mapping with string 'id' and 'namespace'")
    return FlowRef(doc["namespace"], doc["id"])


def _subflow_targets(node: Any) -> set[tuple[str, str]]:
    """(namespace, flowId) of every Subflow task anywhere in a flow document."""
    found: set[tuple[str, str]] = set()
    if isinstance(node, dict):
        if node.get("type") == "io.kestra.plugin.core.flow.Subflow":
            found.add((str(node.get("namespace")), str(node.get("flowId"))))
        for value in node.values():
            found |= _subflow_targets(value)
    elif isinstance(node, list):
        for value in node:
            found |= _subflow_targets(value)
    return found


def deploy_order(docs: list[Any]) -> list[int]:
    """Indexes of flow documents so that a subflow is deployed before the flows calling it
    (Kestra refuses a flow whose subflow does not exist). Cycles keep the file order."""
    refs = {(d.get("namespace"), d.get("id")): i for i, d in enumerate(docs) if isinstance(d, dict)}
    order: list[int] = []
    state: dict[int, str] = {}

    def visit(i: int) -> None:
        if state.get(i):
            return
        state[i] = "visiting"
        for target in sorted(_subflow_targets(docs[i])):
            if target in refs:
                visit(refs[target])
        state[i] = "done"
        order.append(i)

    for i in range(len(docs)):
        visit(i)
    return order


class ReadRetry(Retry):
    """urllib3's ``Retry`` limited to the methods it may repeat: urllib3 retries a failed connection
    whatever the method, and a trigger, resume or kill must never be sent twice."""

    def increment(self, method: str | None = None, *args: Any, **kwargs: Any) -> Retry:
        if method is not None and not self._is_method_retryable(method):
            no_retry = self.new(total=0, connect=0, read=False, status=0)
            return Retry.increment(no_retry, method, *args, **kwargs)  # raises: nothing is left
        return super().increment(method, *args, **kwargs)


def read_retry(retries: int, backoff_s: float) -> Retry:
    """At most ``retries`` more tries of a GET that could not connect, timed out reading or got a
    502/503/504, waiting ``backoff_s`` × 2ⁿ between them (urllib3 retries the first at once); the
    last answer or error is then the caller's to report (no Retry-After: the wait stays bounded)."""
    return ReadRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        redirect=False,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=(502, 503, 504),
        backoff_factor=backoff_s,
        raise_on_status=False,
        respect_retry_after_header=False,
    )


def _display_url(url: str) -> str:
    """The URL without any user:password@ part, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


def _form_value(value: Any) -> str:
    """Kestra reads every multipart input part as a string: JSON-encode what is not one."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


class KestraClient:
    """A small client for the endpoints the console needs.

    ``username``/``password`` send HTTP basic auth (mandatory in the open-source server since
    0.24); ``token`` sends a Bearer token instead (Enterprise API tokens).
    """

    def __init__(
        self,
        base_url: str,
        *,
        tenant: str = "main",
        username: str | None = None,
        password: str | Secret | None = None,
        token: str | Secret | None = None,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        retries: int = 2,
        backoff_s: float = 0.2,
        version: str | None = None,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise KestraError(f"Kestra URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.display_url = _display_url(self.base_url)
        self.tenant = tenant or "main"
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff_s = max(0.0, float(backoff_s))
        self.session = session or requests.Session()
        adapter = HTTPAdapter(max_retries=read_retry(self.retries, self.backoff_s))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._version = version
        pw = password.get() if isinstance(password, Secret) else (password or "")
        tok = token.get() if isinstance(token, Secret) else (token or "")
        self._auth: tuple[str, str] | None = None
        self._headers: dict[str, str] = {"Accept": "application/json"}
        if tok:
            self._headers["Authorization"] = f"Bearer {tok}"
        elif username:
            self._auth = (username, pw)

    def close(self) -> None:
        self.session.close()

    def __repr__(self) -> str:  # never shows credentials
        return f"KestraClient({self.display_url!r}, tenant={self.tenant!r})"

    # ------------------------------------------------------------------ transport
    def _url(self, path: str, *, tenant: bool = True) -> str:
        prefix = f"/api/v1/{quote(self.tenant, safe='')}" if tenant else "/api/v1"
        return f"{self.base_url}{prefix}{path}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        tenant: bool = True,
        params: Any = None,
        data: Any = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        what: str = "",
    ) -> requests.Response:
        url = self._url(path, tenant=tenant)
        what = what or f"{method} {path}"
        all_headers = dict(self._headers)
        all_headers.update(headers or {})
        try:
            resp = self.session.request(
                method,
                url,
                params=params,
                data=data,
                files=files,
                headers=all_headers,
                auth=self._auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise self._timeout(what) from None
        except requests.ConnectionError as exc:
            # reads that timed out on every try end as a ConnectionError wrapping urllib3's reason
            cause = exc.args[0] if exc.args else None
            if isinstance(cause, MaxRetryError) and isinstance(cause.reason, ReadTimeoutError):
                raise self._timeout(what) from None
            raise KestraUnreachable(
                f"Kestra at {self.display_url} cannot be reached (connection refused or host down)"
            ) from None
        except requests.RequestException as exc:
            raise KestraError(f"{what} failed: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise self._status_error(resp, what)
        return resp

    def _timeout(self, what: str) -> KestraTimeout:
        return KestraTimeout(f"Kestra at {self.display_url} did not answer {what} within {self.timeout:g} s")

    def _status_error(self, resp: requests.Response, what: str) -> KestraError:
        code = resp.status_code
        detail = _error_detail(resp)
        suffix = f": {detail}" if detail else ""
        err: KestraError
        if code == 401:
            err = KestraAuthError(
                f"Kestra at {self.display_url} refused the credentials (HTTP 401); "
                "check KESTRA_USERNAME/KESTRA_PASSWORD or KESTRA_TOKEN"
            )
        elif code == 403:
            err = KestraAuthError(f"Kestra denied {what} (HTTP 403): the user lacks the permission")
        elif code == 404:
            err = KestraNotFound(f"Kestra has no such resource for {what} (HTTP 404){suffix}")
        elif code == 409:
            err = KestraConflict(f"Kestra refused {what} in the current state (HTTP 409){suffix}")
        elif code in (400, 422):
            err = KestraBadRequest(f"Kestra rejected {what} (HTTP {code}){suffix}")
        elif code >= 500:
            err = KestraServerError(f"Kestra failed on {what} (HTTP {code}){suffix}")
        else:
            err = KestraError(f"Kestra answered {what} with HTTP {code}{suffix}")
        err.status = code
        return err

    def _json(self, resp: requests.Response, what: str) -> Any:
        try:
            return resp.json()
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            raise KestraProtocolError(
                f"Kestra answered {what} with something that is not JSON (HTTP {resp.status_code})"
            ) from None

    def _execution(self, doc: Any, what: str) -> Execution:
        try:
            return Execution.from_kestra(doc)
        except MalformedExecutionError as exc:
            raise KestraProtocolError(f"Kestra answered {what} with an unexpected execution: {exc}") from None

    # ------------------------------------------------------------------ server
    def configs(self) -> dict[str, Any]:
        """``GET /api/v1/configs``: version, commitId, url, isBasicAuthInitialized..."""
        doc = self._json(self._request("GET", "/configs", tenant=False, what="GET configs"), "GET configs")
        if not isinstance(doc, dict):
            raise KestraProtocolError("Kestra answered GET configs with something that is not an object")
        return doc

    @property
    def version(self) -> str:
        """The server version (read once); e.g. ``1.3.21`` or ``2.0.0``."""
        if self._version is None:
            try:
                version = self.configs().get("version")
            except KestraNotFound:  # a server without /configs predates 2.x: use the 1.x paths
                version = "1.0.0-unknown"
            if not isinstance(version, str) or not version:
                raise KestraProtocolError("Kestra's GET configs has no version")
            self._version = version
        return self._version

    @property
    def major(self) -> int:
        head = self.version.split(".", 1)[0]
        return int(head) if head.isdigit() else 1

    def check_auth(self) -> None:
        """Raise KestraAuthError when the API refuses the credentials (configs may be open)."""
        what = "GET executions/search"
        resp = self._request("GET", "/executions/search", params={"page": 1, "size": 1}, what=what)
        doc = self._json(resp, what)  # a server answering garbage is not healthy either
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            raise KestraProtocolError("Kestra answered search executions without a results list")

    # ------------------------------------------------------------------ flows
    def get_flow(self, namespace: str, flow_id: str) -> dict[str, Any]:
        path = f"/flows/{quote(namespace, safe='')}/{quote(flow_id, safe='')}"
        doc = self._json(self._request("GET", path, params={"source": "true"}), f"GET flow {flow_id}")
        if not isinstance(doc, dict):
            raise KestraProtocolError(f"Kestra answered GET flow {flow_id} with a non-object")
        return doc

    def deploy_flow(self, source: str) -> dict[str, Any]:
        """Create or update one flow (upsert: PUT, then POST on 404).

        Returns ``{"namespace", "id", "revision", "action": "created" | "updated"}``.
        """
        ref = flow_ref(source)
        headers = {"Content-Type": "application/x-yaml"}
        body = source.encode("utf-8")
        path = f"/flows/{quote(ref.namespace, safe='')}/{quote(ref.id, safe='')}"
        action = "updated"
        try:
            resp = self._request("PUT", path, data=body, headers=headers, what=f"update flow {ref}")
        except KestraNotFound:
            action = "created"
            resp = self._request("POST", "/flows", data=body, headers=headers, what=f"create flow {ref}")
        doc = self._json(resp, f"deploy flow {ref}")
        revision = doc.get("revision") if isinstance(doc, dict) else None
        return {"namespace": ref.namespace, "id": ref.id, "revision": revision, "action": action}

    def validate_flows(self, sources: Iterable[str]) -> list[dict[str, Any]]:
        """``POST /flows/validate`` with several YAML documents; one result per document.

        A result's ``constraints`` is None when the flow is valid.
        """
        body = "\n---\n".join(s.strip() for s in sources)
        resp = self._request(
            "POST",
            "/flows/validate",
            data=body.encode("utf-8"),
            headers={"Content-Type": "application/x-yaml"},
            what="validate flows",
        )
        doc = self._json(resp, "validate flows")
        if not isinstance(doc, list) or not all(isinstance(d, dict) for d in doc):
            raise KestraProtocolError("Kestra answered validate flows with something that is not a list")
        return doc

    def deploy_flows(self, flows_dir: Path) -> list[dict[str, Any]]:
        """Validate then deploy every ``*.yaml``/``*.yml`` in a folder, subflows first.

        Raises KestraBadRequest naming the file and Kestra's first constraint when ``/flows/validate``
        finds any flow invalid; nothing is deployed then.
        """
        files = sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")])
        if not files:
            raise KestraError(f"no flow files in {flows_dir}")
        sources = [f.read_text(encoding="utf-8") for f in files]
        for path, source in zip(files, sources, strict=True):
            try:
                flow_ref(source)
            except KestraBadRequest as exc:
                raise KestraBadRequest(f"flow {path.name}: {exc}") from None
        results = self.validate_flows(sources)
        for result in results:
            if result.get("constraints"):
                index = result.get("index")
                name = files[index].name if isinstance(index, int) and 0 <= index < len(files) else "?"
                lines = [ln.strip() for ln in str(result["constraints"]).splitlines() if ln.strip()]
                more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
                raise KestraBadRequest(f"flow {name} is invalid: {lines[0][:300]}{more}")
        order = deploy_order([load_yaml(source) for source in sources])
        return [{**self.deploy_flow(sources[i]), "file": files[i].name} for i in order]

    # ------------------------------------------------------------------ executions
    def trigger(
        self,
        namespace: str,
        flow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        wait: bool = False,
    ) -> Execution:
        """Create an execution: multipart/form-data, one part per input; labels as ``k:v``."""
        params: list[tuple[str, str]] = [("wait", "true" if wait else "false")]
        params += [("labels", f"{k}:{v}") for k, v in (labels or {}).items()]
        files = [(k, (None, _form_value(v))) for k, v in (inputs or {}).items() if v is not None]
        path = f"/executions/{quote(namespace, safe='')}/{quote(flow_id, safe='')}"
        what = f"start {namespace}.{flow_id}"
        # without inputs there is no body at all (the endpoint's body is optional)
        resp = self._request("POST", path, params=params, files=files or None, what=what)
        return self._execution(self._json(resp, what), what)

    def search_executions(
        self,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: Iterable[State | str] | None = None,
        labels: Mapping[str, str] | None = None,
        started_from: str | None = None,
        page: int = 1,
        size: int = 25,
        sort: str = DEFAULT_SORT,
    ) -> tuple[list[Execution], int]:
        """``GET /executions/search`` with ``filters[...]``; returns (executions, total).

        ``started_from`` (RFC 3339) keeps executions that started at or after it
        (``filters[startDate][GREATER_THAN_OR_EQUAL_TO]``). 2.x list items carry no task runs; use
        :meth:`get_execution` for them.
        """
        if page < 1 or size < 1:
            raise KestraBadRequest("page and size must be at least 1")
        params: list[tuple[str, str]] = [("page", str(page)), ("size", str(size)), ("sort", sort)]
        if namespace:
            params.append(("filters[namespace][EQUALS]", namespace))
        if flow_id:
            params.append(("filters[flowId][EQUALS]", flow_id))
        try:
            state_list = [State(s).value for s in (states or [])]
        except ValueError:
            raise KestraBadRequest(f"unknown execution state in {list(states or [])}") from None
        if state_list:
            params.append(("filters[state][IN]", ",".join(state_list)))
        for key, value in (labels or {}).items():
            params.append((f"filters[labels][EQUALS][{key}]", value))
        if started_from:
            params.append(("filters[startDate][GREATER_THAN_OR_EQUAL_TO]", started_from))
        what = "search executions"
        doc = self._json(self._request("GET", "/executions/search", params=params, what=what), what)
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            raise KestraProtocolError("Kestra answered search executions without a results list")
        total = doc.get("total")
        if not isinstance(total, int):
            raise KestraProtocolError("Kestra answered search executions without a total")
        return [self._execution(item, what) for item in doc["results"]], total

    def get_execution(self, execution_id: str, *, with_outputs: bool = True) -> Execution:
        """One execution. On 2.x, task-run outputs come from ``/outputs/{executionId}``."""
        what = f"get execution {execution_id}"
        resp = self._request("GET", f"/executions/{quote(execution_id, safe='')}", what=what)
        execution = self._execution(self._json(resp, what), what)
        needs_outputs = with_outputs and execution.task_runs
        if needs_outputs and self.major >= 2 and not any(run.outputs for run in execution.task_runs):
            self._fill_outputs(execution)
        return execution

    def _fill_outputs(self, execution: Execution) -> None:
        what = f"get outputs of {execution.id}"
        base = f"/outputs/{quote(execution.id, safe='')}"
        infos = self._json(self._request("GET", base, what=what), what)
        if not isinstance(infos, list):
            raise KestraProtocolError(f"Kestra answered {what} with something that is not a list")
        by_id = {run.id: run for run in execution.task_runs}
        for info in infos:
            run_id = info.get("taskRunId") if isinstance(info, dict) else None
            if not isinstance(run_id, str) or run_id not in by_id:
                continue
            values = self._json(self._request("GET", f"{base}/{quote(run_id, safe='')}", what=what), what)
            if isinstance(values, dict):
                by_id[run_id].outputs = values

    def logs(
        self, execution_id: str, *, min_level: str | None = None, task_id: str | None = None
    ) -> list[LogEntry]:
        what = f"get logs of {execution_id}"
        params: list[tuple[str, str]] = []
        if self.major >= 2:
            if min_level:
                params.append(("filters[level][EQUALS]", min_level))
            if task_id:
                params.append(("filters[taskId][EQUALS]", task_id))
        else:
            if min_level:
                params.append(("minLevel", min_level))
            if task_id:
                params.append(("taskId", task_id))
        resp = self._request("GET", f"/logs/{quote(execution_id, safe='')}", params=params, what=what)
        doc = self._json(resp, what)
        if not isinstance(doc, list):
            raise KestraProtocolError(f"Kestra answered {what} with something that is not a list")
        try:
            return [LogEntry.from_kestra(item) for item in doc]
        except MalformedExecutionError as exc:
            raise KestraProtocolError(f"Kestra answered {what} with an unexpected log entry: {exc}") from None

    def resume(self, execution_id: str, inputs: Mapping[str, Any]) -> None:
        """Resume a PAUSED execution with the Pause task's ``onResume`` inputs (multipart).

        KestraConflict when the execution is not PAUSED.
        """
        action = "/actions/resume" if self.major >= 2 else "/resume"
        files = [(name, (None, _form_value(value))) for name, value in inputs.items()]
        what = f"resume {execution_id}"
        path = f"/executions/{quote(execution_id, safe='')}{action}"
        try:
            self._request("POST", path, files=files, what=what)
        except KestraConflict as exc:
            raise KestraConflict(f"execution {execution_id} is not paused, it cannot be resumed") from exc

    def kill(self, execution_id: str) -> None:
        """Kill a running or paused execution and its subflows (``isOnKillCascade=true``).

        Kestra's kill route produces ``text/json`` only, and Micronaut refuses a request that does
        not accept it (406): the call sends ``Accept: text/json``. With the cascade Kestra also
        accepts (202) the kill of an execution that has already ended and leaves it as it was, so
        the state is read first: KestraConflict, naming the state, when it has ended (and when a
        server answers 409)."""
        current = self.get_execution(execution_id, with_outputs=False).state
        ended = f"execution {execution_id} has already ended"
        if current.terminal:
            raise KestraConflict(f"{ended} ({current.value}); nothing to kill")
        action = "/actions/kill" if self.major >= 2 else "/kill"
        path = f"/executions/{quote(execution_id, safe='')}{action}"
        params, accept = {"isOnKillCascade": "true"}, {"Accept": KILL_MEDIA_TYPE}
        try:
            self._request("DELETE", path, params=params, headers=accept, what=f"kill {execution_id}")
        except KestraConflict as exc:
            raise KestraConflict(f"{ended}; nothing to kill") from exc


def _error_detail(resp: requests.Response) -> str:
    """Kestra's own one-line reason (``message`` of its JSON error), trimmed; never the body."""
    try:
        doc = resp.json()
    except (ValueError, RecursionError):
        return ""
    message = doc.get("message") if isinstance(doc, dict) else None
    if not isinstance(message, str):
        return ""
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line[:200]
