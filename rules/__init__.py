"""The rules, one module each; shipped in the wheel as ``dllint.rules``."""
