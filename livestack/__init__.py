"""The live stack: Prometheus configuration and recording rules (``livestack/prometheus/``) and the
launchers of its processes (``livestack/processes.py``)."""
