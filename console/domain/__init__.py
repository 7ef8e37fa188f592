"""The loop's data, at the ground floor: models, the action registry, Kestra-shaped executions, the
snapshot schema and the loop's vocabulary; and the pure helpers every layer shares (text and URLs fit
to show, the configuration file's reader). Imports nothing from the rest of ``console``."""
