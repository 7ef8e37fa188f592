"""The Streamlit side's shared pieces, by concern: ``shell`` (deep links run inside ``app.py``),
``services`` (the console's parts once per process, safe calls, the engine's status), ``identity``
(sign-in), ``reads`` (cached reads of the store and the engine) and ``widgets`` (badges, the
decision card, links). Everything that can be computed without Streamlit lives in ``console/``."""
