"""Kestra: the REST client and the backend that runs the loop as the flow ``devops-loop``."""
