"""The embedded engine: runs the loop in-process and keeps executions in SQLite in Kestra's shape."""
