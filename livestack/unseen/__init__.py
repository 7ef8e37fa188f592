"""A small HTTP service written apart from the demo service, instrumented the way a new user's
service usually is: prometheus_client's default registry and conventional names only
(``http_requests_total{handler,code,method}``, ``http_request_duration_seconds{handler}`` with the
default buckets, ``process_*`` and ``python_*``). The console knows nothing specific about it: it is
configured with ``profile: auto``, a selector and a memory limit. Used by
``benchmarks/bench_unseen.py`` and the ``evidence`` tests (``tests/evidence/``)."""
