"""The loop itself: its steps as plain functions (shared by both engines), the routing policy, the
LLM narrative, the demo scenarios and the training export."""
