"""dllint: a linter for the silent bugs of deep-learning training code."""

__version__ = "0.1.0"


def _map_source_checkout_rules() -> None:
    """In a source checkout the rules live in the top-level ``rules/`` folder, which the
    wheel ships as ``dllint.rules``; map it the same way (lazily, only when imported) so
    tests and ``python -m dllint`` run from a clone behave like the installed package."""
    import importlib.util
    import sys
    from pathlib import Path

    package = Path(__file__).resolve().parent
    init = package.parent / "rules" / "__init__.py"
    if (package / "rules").is_dir() or not init.is_file():
        return

    class CheckoutRules:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name != "dllint.rules":
                return None
            return importlib.util.spec_from_file_location(
                name, init, submodule_search_locations=[str(init.parent)]
            )

    sys.meta_path.append(CheckoutRules)


_map_source_checkout_rules()
