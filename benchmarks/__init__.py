"""Scripts that measure the figures in the README, and the LogHub accuracy harness (``loghub.py``)
they share with tests/analysis/test_loghub.py. Not part of the production package ``console``."""
