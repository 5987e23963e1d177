"""DL502 train-mode-not-restored: an epoch loop switches its model to eval mode for
validation and never back, so every later epoch trains in eval mode.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.mode_flow import EvalSite, mode_flow_of
from dllint.analysis.modes import BATCH_NORM, DROPOUT, EVAL
from dllint.finding import Finding
from dllint.rule import Rule


class TrainModeNotRestored(Rule):
    code = "DL502"
    name = "train-mode-not-restored"
    summary = "model switched to eval mode inside a training loop and never back to train mode"
    severity = "error"
    needs = (("eval", "train"), ("backward",), ("step",))

    def check(self) -> Iterator[Finding]:
        flow = mode_flow_of(self.facts)
        modes = flow.modes
        if not modes.trains_anywhere:
            return
        for found in modes.mode_calls:
            if found.mode != EVAL:
                continue
            function = self.facts.tree.function_of(found.call)
            if function is not None and modes.framework_managed(function):
                continue  # Lightning switches modes around its hooks
            site = self._unrestored_site(found)
            if site is not None:
                yield self.finding(found.call, self._message(site))

    def _unrestored_site(self, found) -> EvalSite | None:
        """The innermost loop that trains the model and reaches this ``eval()``, when
        nothing in it (or in the functions between) may call ``train()`` again."""
        flow = mode_flow_of(self.facts)
        own_ref = flow.modes.ref(found.target)
        for site in flow.eval_sites(found):
            model = flow.model_expr(site)
            if model is None or not flow.trains_model(site.loop, site.ref, model):
                continue
            if flow.known_without_mode_layers(model):
                return None  # eval and train mode compute the same thing
            for function in site.chain:
                for call in self.facts.loops.reach(function):
                    if call is not found.call and flow.may_restore(call, own_ref):
                        return None
            for call in self.facts.tree.descendants(site.loop, cst.Call):
                if call is site.site or call is found.call:
                    continue
                if flow.may_restore(call, site.ref):
                    return None
            if flow.ends_iterations(site.site, site.loop):
                return None
            return site
        return None

    def _message(self, site: EvalSite) -> str:
        code = self.facts.module.code_for_node
        name = code(site.target)
        outer = site.ref.text or name
        place = self.facts.place(site.loop)
        kind = "for" if isinstance(site.loop, cst.For) else "while"
        where = (
            f"inside the `{kind}` loop on {place}"
            if not site.chain
            else f"in `{site.chain[0].name.value}()`, called from the `{kind}` loop on {place},"
        )
        model = mode_flow_of(self.facts).model_expr(site)
        kinds = mode_flow_of(self.facts).modes.layer_kinds(model) if model else frozenset()
        effects = []
        if DROPOUT in kinds:
            effects.append("dropout off")
        if BATCH_NORM in kinds:
            effects.append("batch-norm statistics frozen")
        effect = " and ".join(effects) or "dropout and batch norm in inference behaviour"
        return (
            f"`{code(site.call)}` switches `{outer}` to eval mode {where} and nothing calls "
            f"`{outer}.train()` before the next training step, so every iteration after "
            f"this one trains with {effect}; call `{outer}.train()` at the start of each "
            f"epoch or right after validation."
        )
