"""The console's core, without Streamlit: the loop, its analysis, the engines that run it, storage,
access control and what the pages show. Layered; see docs/ARCHITECTURE.md and the import-linter
contracts in pyproject.toml."""
