"""The loop's data, at the ground floor: models, the action registry, Kestra-shaped executions, the
snapshot schema and the loop's vocabulary. Imports nothing from the rest of ``console``."""
