"""DL202 modules-in-plain-list: submodules kept in a Python list/dict/tuple are unregistered.

``nn.Module`` registers an attribute as a child only when the value itself is a
Module, so layers kept in ``self.layers = [...]`` (or filled by
``self.layers.append(...)``) are invisible to ``.parameters()``, ``.to(device)``,
``state_dict()`` and ``.eval()``. The analysis (``dllint.analysis.modules``) leaves
an attribute alone whenever something could register or handle its elements.
"""

from __future__ import annotations

from collections.abc import Iterator

from dllint.analysis.modules import PlainContainer, modules_of
from dllint.finding import Finding
from dllint.rule import Rule

WRAPPER = {"list": "nn.ModuleList", "tuple": "nn.ModuleList", "dict": "nn.ModuleDict"}


class ModulesInPlainList(Rule):
    code = "DL202"
    name = "modules-in-plain-list"
    summary = "nn.Module attribute holding submodules in a plain list, dict or tuple"
    severity = "error"
    # an nn.Module (or LightningModule) subclass of this file, holding `self.` attributes
    needs = (("torch",), ("Module",), ("self.",))

    def check(self) -> Iterator[Finding]:
        for container in modules_of(self.facts).plain_containers():
            yield self.finding(container.statement, self.message(container))

    def message(self, container: PlainContainer) -> str:
        code = self.facts.module.code_for_node
        attribute = f"self.{container.attribute}"
        element = " ".join(code(container.modules[0]).split())
        if len(element) > 40:
            element = element[:37] + "..."
        wrapper = WRAPPER[container.kind]
        owner = container.owner.name
        if container.stateful:
            return (
                f"`{attribute}` keeps submodules such as `{element}` in a plain Python "
                f"{container.kind}, so `{owner}.parameters()`, `.to(device)` and `state_dict()` "
                f"never see them: the optimizer never updates their weights and checkpoints "
                f"drop them; wrap the {container.kind} in `{wrapper}(...)`."
            )
        return (
            f"`{attribute}` keeps `{element}` in a plain Python {container.kind}, so "
            f"`{owner}.eval()` never reaches it and dropout stays on during evaluation; "
            f"wrap the {container.kind} in `{wrapper}(...)`."
        )
