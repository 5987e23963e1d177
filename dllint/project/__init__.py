"""The project a file belongs to: its other modules, read (never run) so that a
file's analysis sees what it imports from them (``prelude``), and cache keys that
change when they do (``prelude.digest``)."""
