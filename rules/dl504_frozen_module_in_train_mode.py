"""DL504 frozen-module-in-train-mode: a frozen feature extractor with batch norm or
dropout runs in training mode, so its statistics drift and its dropout stays on.

``torch.no_grad()`` and ``requires_grad_(False)`` stop gradients, not batch-norm
running-statistics updates or dropout: only ``eval()`` does, and an owner's
``train()`` undoes an ``eval()`` made once in ``__init__``.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.classes import ClassInfo, first_param
from dllint.analysis.mode_flow import MODE_HELPER_WORDS, mode_flow_of, self_attribute
from dllint.analysis.modes import BATCH_NORM, DROPOUT, EVAL, TRAIN, UNKNOWN, _words
from dllint.analysis.names import ITER
from dllint.analysis.tree import argument, call_name, dotted, literal_value
from dllint.finding import Finding
from dllint.rule import Rule

ENTRY_METHODS = ("forward", "__call__", "training_step")
# Methods of a backbone that run (part of) its forward pass.
EXTRACTOR_METHODS = {"forward", "forward_features", "extract_features", "features", "encode"}
ENABLE_GRAD = {
    "torch.enable_grad",
    "torch.autograd.enable_grad",
    "torch.autograd.grad_mode.enable_grad",
}
SET_GRAD_ENABLED = {"torch.set_grad_enabled", "torch.autograd.set_grad_enabled"}


class FrozenModuleInTrainMode(Rule):
    code = "DL504"
    name = "frozen-module-in-train-mode"
    summary = "frozen submodule with batch norm or dropout left in training mode"
    severity = "error"
    needs = (
        ("no_grad", "inference_mode", "set_grad_enabled", "requires_grad"),
        ("BatchNorm", "Dropout", "torchvision", "timm", "transformers", "batch_norm",
         "dropout"),
    )  # fmt: skip

    def check(self) -> Iterator[Finding]:
        flow = mode_flow_of(self.facts)
        reported: set[tuple] = set()
        for info in self.facts.classes.by_node.values():
            if not info.is_module or not self._owner_trains(info):
                continue
            for call, attribute, how in self._frozen_calls(info):
                if (id(info), attribute) in reported:
                    continue
                sub = call.func.value if _is_method_call(call) else call.func
                kinds = flow.certain_mode_layers(sub)
                if not kinds or self._bare_mode_layer(sub):
                    continue
                if self._kept_in_eval(info, attribute, sub):
                    continue
                if self._recomputed_with_grad(info, attribute):
                    continue
                reported.add((id(info), attribute))
                yield self.finding(call, self._member_message(call, sub, kinds, how))
        yield from self._loop_findings(reported)

    # -- submodules of a trained owner -------------------------------------------------------
    def _owner_trains(self, info: ClassInfo) -> bool:
        if info.is_lightning:
            return info.method("training_step") is not None
        return flow_modes(self).trains_anywhere

    def _entry_methods(self, info: ClassInfo) -> list[cst.FunctionDef]:
        found = []
        for name in ENTRY_METHODS:
            method = info.method(name)
            if method is not None and method not in found:
                found.append(method)
        for method in list(found):
            for call in self.facts.tree.descendants(method, cst.Call):
                callee = self.facts.values.called_function(call)
                if callee is not None and callee not in found and callee in _methods(info):
                    found.append(callee)
        return found

    def _frozen_calls(self, info: ClassInfo) -> Iterator[tuple[cst.Call, str, str]]:
        """Calls of ``self.X`` in the forward path: under no_grad, or of an ``X`` whose
        parameters ``__init__`` froze."""
        modes = flow_modes(self)
        flow = mode_flow_of(self.facts)
        frozen = self._frozen_attributes(info)
        for method in self._entry_methods(info):
            for call in self.facts.tree.descendants(method, cst.Call):
                attribute = self._submodule_called(call, method)
                if attribute is None:
                    continue
                if flow.under_no_grad(call):
                    with_node = next(
                        (
                            a
                            for a in self.facts.tree.ancestors(call)
                            if isinstance(a, cst.With) and modes.grad_disabled(a)
                        ),
                        None,
                    )
                    how = modes.grad_disabled(with_node) if with_node else "torch.no_grad()"
                    yield call, attribute, f"under `{how}`"
                elif attribute in frozen:
                    yield call, attribute, "with its parameters frozen"

    def _submodule_called(self, call: cst.Call, method: cst.FunctionDef) -> str | None:
        func = call.func
        if _is_method_call(call):
            func = func.value
        return self_attribute(func, method)

    def _recomputed_with_grad(self, info: ClassInfo, attribute: str) -> bool:
        """A method of the class runs ``self.<attribute>`` again under
        ``torch.enable_grad()`` (a reversible layer's custom backward, recomputation for
        checkpointing): it is trained, not frozen, and the no_grad pass is a saving of
        activations that wants the same training-mode behaviour (dropout seeds)."""
        tree = self.facts.tree
        for method in _methods(info):
            for call in tree.descendants(method, cst.Call):
                if self._submodule_called(call, method) != attribute:
                    continue
                for ancestor in tree.ancestors(call):
                    if ancestor is method:
                        break
                    if isinstance(ancestor, cst.With) and any(
                        self._enables_grad(item.item) for item in ancestor.items
                    ):
                        return True
        return False

    def _enables_grad(self, expr: cst.CSTNode) -> bool:
        if not isinstance(expr, cst.Call):
            return False
        qualname = self.facts.qualname(expr.func)
        if qualname in ENABLE_GRAD:
            return True
        mode = argument(expr, 0, "mode") if qualname in SET_GRAD_ENABLED else None
        return mode is not None and literal_value(mode) is True

    def _frozen_attributes(self, info: ClassInfo) -> set[str]:
        """``self.X.requires_grad_(False)`` or ``for p in self.X.parameters():
        p.requires_grad = False`` in a method of the class."""
        found = set()
        tree = self.facts.tree
        for method in _methods(info):
            self_name = first_param(method)
            for call in tree.descendants(method, cst.Call):
                if call_name(call) != "requires_grad_" or not isinstance(call.func, cst.Attribute):
                    continue
                flag = argument(call, 0, "requires_grad")
                if flag is None or literal_value(flag) is not False:
                    continue
                if _conditional(tree, call, method):
                    continue
                attribute = _self_attr_of(call.func.value, self_name, self.facts)
                if attribute is not None:
                    found.add(attribute)
            for assign in tree.descendants(method, cst.Assign):
                if literal_value(assign.value) is not False or _conditional(tree, assign, method):
                    continue
                for target in assign.targets:
                    t = target.target
                    if isinstance(t, cst.Attribute) and t.attr.value == "requires_grad":
                        attribute = _self_attr_of(t.value, self_name, self.facts)
                        if attribute is not None:
                            found.add(attribute)
        return found

    def _kept_in_eval(self, info: ClassInfo, attribute: str, sub: cst.CSTNode) -> bool:
        """Something may put ``self.<attribute>`` in eval mode where it lasts: a method
        other than ``__init__`` (an overridden ``train()``, ``forward``), code outside
        the class, a mode helper given it; or ``__init__`` when nothing calls the
        owner's ``train()`` later and the submodule does not start in eval mode."""
        modes = flow_modes(self)
        init = info.method("__init__")
        in_init = False
        for found in modes.mode_calls:
            if found.mode == TRAIN:
                continue
            if isinstance(found.target, cst.Call) and call_name(found.target) == "super":
                continue  # ``super().train(mode)``: the owner's own switch
            text = dotted(found.target) or ""
            owner_method = self.facts.tree.function_of(found.call)
            inside = owner_method is not None and owner_method in _methods(info)
            other = self.facts.classes.enclosing(found.call)
            if not inside and other is not None and other.is_module:
                continue  # another module's own submodule
            mentions = f".{attribute}" in f"{text}." or not text
            if inside and owner_method is init:
                if mentions or found.mode == UNKNOWN or not text.count("."):
                    in_init = True
                continue
            if inside or mentions:
                return True
        for call in self.facts.calls():
            name = call_name(call)
            if (
                name
                and _words(name) & MODE_HELPER_WORDS
                and modes.mode_call(call) is None
                and any(f".{attribute}" in f"{dotted(arg.value) or ''}." for arg in call.args)
            ):
                return True
        if in_init or _starts_in_eval(self, sub):
            return not self._owner_train_called(info)
        return False

    def _owner_train_called(self, info: ClassInfo) -> bool:
        if info.is_lightning:
            return True  # the trainer calls train() every epoch
        modes = flow_modes(self)
        for found in modes.mode_calls:
            if found.mode == EVAL:
                continue
            owner = self.facts.values.instance_class(found.target)
            if owner is not None and any(cls is info for cls in owner.lineage()):
                return True
        return False

    def _member_message(self, call, sub, kinds, how) -> str:
        name = self.facts.module.code_for_node(sub)
        return (
            f"`{name}` runs {how} as a frozen feature extractor but stays in training "
            f"mode while its owner trains, so {_effect(kinds)}; call `{name}.eval()` in an "
            f"overridden `train(self, mode=True)` (after `super().train(mode)`) or before "
            f"this call."
        )

    # -- frozen models in a training loop -------------------------------------------------------
    def _loop_findings(self, reported: set) -> Iterator[Finding]:
        modes = flow_modes(self)
        flow = mode_flow_of(self.facts)
        for with_node in self.facts.tree.nodes(cst.With):
            how = modes.grad_disabled(with_node)
            if how is None or not modes.in_training_iteration(with_node):
                continue
            function = self.facts.tree.function_of(with_node)
            if function is not None and modes.framework_managed(function):
                continue
            for call, model in modes.model_calls(with_node):
                text = dotted(model)
                if text is None or ("loop", text) in reported:
                    continue
                kinds = flow.certain_mode_layers(model)
                if not kinds or self._bare_mode_layer(model) or self._trained(model, text):
                    continue
                if not self._left_in_train_mode(call, model):
                    continue
                reported.add(("loop", text))
                yield self.finding(
                    call,
                    f"`{text}` runs under `{how}` in the training loop as a frozen model but "
                    f"is in training mode, so {_effect(kinds)}; call `{text}.eval()` once "
                    f"before the loop (and after any `train()` of a module that holds it).",
                )

    def _bare_mode_layer(self, sub: cst.CSTNode) -> bool:
        """``sub`` is itself a batch-norm or dropout layer (``nn.BatchNorm1d(8)``), not a
        network holding one: calling it under ``no_grad`` asks for exactly what its
        training mode does (batch statistics, dropping), as in a sync-batch-norm test."""
        values = self.facts.values
        leaves = values.origins(sub, through=values.module_passthrough)
        if not leaves:
            return False
        for leaf in leaves:
            if leaf.path or not isinstance(leaf.node, cst.Call):
                return False
            qualname = self.facts.qualname(leaf.node.func) or ""
            last = qualname.rsplit(".", 1)[-1]
            if not qualname.startswith("torch.nn.") or not (
                "BatchNorm" in last or "Dropout" in last
            ):
                return False
        return True

    def _trained(self, model: cst.CSTNode, text: str) -> bool:
        """The model's parameters feed an optimizer, or it runs with gradients in a
        training iteration (a GAN generator used under no_grad for the D step)."""
        training = self.facts.training
        mine = training.model_ref(model)
        if any(source.related(mine) for source in training._all_sources):
            return True
        flow = mode_flow_of(self.facts)
        modes = flow.modes
        for call in self.facts.calls():
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in EXTRACTOR_METHODS:
                func = func.value
            if dotted(func) != text or flow.under_no_grad(call):
                continue
            if modes.in_training_iteration(call) or modes.training_loops_around(call):
                return True
        return False

    def _left_in_train_mode(self, call: cst.Call, model: cst.CSTNode) -> bool:
        """Nothing switched it (it was built in training mode), or the last switch was
        the ``train()`` of a module that holds it; an explicit ``model.train()`` of the
        model itself is deliberate (mean teacher)."""
        modes = flow_modes(self)
        event = modes.mode_at(call, model)
        if event is None:
            return modes.initial_mode(model) == TRAIN
        if event.mode != TRAIN or not event.direct:
            return False
        found = modes.mode_call(event.node)
        target = dotted(found.target) if found is not None else None
        text = dotted(model)
        return target is not None and text is not None and text.startswith(target + ".")


def flow_modes(rule: Rule):
    return mode_flow_of(rule.facts).modes


def _methods(info: ClassInfo) -> list[cst.FunctionDef]:
    return [m for cls in info.lineage() for m in cls.methods.values()]


def _is_method_call(call: cst.Call) -> bool:
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value in EXTRACTOR_METHODS
        and isinstance(func.value, cst.Attribute)
    )


def _self_attr_of(expr: cst.CSTNode, self_name: str | None, facts) -> str | None:
    """``X`` for ``self.X``, or for a loop variable over ``self.X.parameters()``."""
    if (
        isinstance(expr, cst.Attribute)
        and isinstance(expr.value, cst.Name)
        and expr.value.value == self_name
    ):
        return expr.attr.value
    if isinstance(expr, cst.Call) and call_name(expr) == "parameters":
        return _self_attr_of(expr.func.value, self_name, facts)
    if isinstance(expr, cst.Name):
        binding = facts.names.binding_at(expr.value, expr)
        if binding is None or binding.kind != "assign" or not binding.path:
            return None
        if binding.path[0] != (ITER,) or not isinstance(binding.value, cst.Call):
            return None
        if call_name(binding.value) not in ("parameters", "named_parameters"):
            return None
        func = binding.value.func
        if isinstance(func, cst.Attribute):
            return _self_attr_of(func.value, self_name, facts)
    return None


def _conditional(tree, node: cst.CSTNode, method: cst.FunctionDef) -> bool:
    """``node`` runs only under an ``if`` in ``method`` (``if freeze: ...``): the
    submodule is not certainly frozen."""
    for ancestor in tree.ancestors(node):
        if ancestor is method:
            return False
        if isinstance(ancestor, (cst.If, cst.IfExp)):
            return True
    return False


def _starts_in_eval(rule: Rule, sub: cst.CSTNode) -> bool:
    return flow_modes(rule).layers(sub) == EVAL


def _effect(kinds: frozenset) -> str:
    effects = []
    if BATCH_NORM in kinds:
        effects.append("its batch-norm running statistics keep drifting with every batch")
    if DROPOUT in kinds:
        effects.append("its dropout stays on")
    return " and ".join(effects)
