"""SQLite storage: every SQL statement of the project lives in this package."""
