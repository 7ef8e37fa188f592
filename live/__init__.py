"""The live stack: Prometheus configuration and recording rules (``live/prometheus/``) and the
launchers of its processes (``live/processes.py``)."""
