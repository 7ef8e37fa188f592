"""The demo service: a small HTTP service of the project's own, its deployer and its load generator.

It is a demo target for the live loop: its faults are declared per version in ``versions.yaml``
(the memory leak is a real allocation; errors, latency and crashes are injected). Nothing here
imports ``console``.
"""

SERVICE_NAME = "demo-service"
