"""The runtime tracer (``dllint trace``); imports torch lazily."""
