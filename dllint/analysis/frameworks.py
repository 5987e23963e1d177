"""Entry points a framework calls: the arguments Lightning passes to a ``Callback``'s hooks.

Nothing in the file calls ``MyCallback.on_train_epoch_end(self, trainer, pl_module)``;
Lightning does, with the LightningModule the trainer fits, in training mode during the
training hooks (it calls ``eval()`` before validation and ``train()`` again after it).
``hook_arguments`` binds ``pl_module`` to the models given to ``trainer.fit(...)`` of the
trainers built with an instance of the callback in ``callbacks=[...]``, so value flow (and
so mode layers and activations) reaches it. Hooks whose mode is not training mode
(validation, test, predict, setup, checkpointing) are not bound: their mode is the
framework's business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import first_param

if TYPE_CHECKING:
    from dllint.analysis.classes import ClassInfo
    from dllint.analysis.values import Values

CALLBACK_BASES = (
    "lightning.Callback",
    "lightning.pytorch.Callback",
    "lightning.pytorch.callbacks.Callback",
    "lightning.pytorch.callbacks.callback.Callback",
    "pytorch_lightning.Callback",
    "pytorch_lightning.callbacks.Callback",
    "pytorch_lightning.callbacks.base.Callback",
    "pytorch_lightning.callbacks.callback.Callback",
)
# Hooks Lightning calls while the module is in training mode: (self, trainer, pl_module, ...).
TRAINING_HOOKS = {
    "on_train_batch_start", "on_train_batch_end", "on_train_epoch_start",
    "on_train_epoch_end", "on_before_backward", "on_after_backward",
    "on_before_optimizer_step", "on_before_zero_grad",
}  # fmt: skip
TRAINER_SUFFIX = ".Trainer"
TRAINER_ROOTS = ("lightning.", "pytorch_lightning.")


def hook_arguments(values: Values, function: cst.FunctionDef, param: cst.Param) -> list:
    """The models Lightning passes as ``param`` when it calls ``function``, a training
    hook of an in-module ``Callback``; empty when it is not one or nothing is known."""
    if function.name.value not in TRAINING_HOOKS:
        return []
    owner = values.classes.enclosing(function)
    if owner is None or not owner.derives_from(CALLBACK_BASES):
        return []
    if first_param(function) is None:
        return []
    params = [*function.params.posonly_params, *function.params.params]
    if len(params) < 3 or params[2] is not param:
        return []
    return _fitted_models(values, owner)


def _fitted_models(values: Values, callback: ClassInfo) -> list[cst.BaseExpression]:
    """The ``model`` of ``trainer.fit(model, ...)`` for trainers given the callback."""
    trainers = [
        call
        for call in values.tree.nodes(cst.Call)
        if _is_trainer(values, call) and _given(values, call, callback)
    ]
    if not trainers:
        return []
    found = []
    for call in values.tree.nodes(cst.Call):
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "fit":
            continue
        leaves = values.origins(func.value)
        if not any(not leaf.path and any(leaf.node is t for t in trainers) for leaf in leaves):
            continue
        model = None
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "model":
                model = arg.value
        positional = [a for a in call.args if a.keyword is None]
        if model is None and positional and not positional[0].star:
            model = positional[0].value
        if model is not None:
            found.append(model)
    return found


def _is_trainer(values: Values, call: cst.Call) -> bool:
    qualname = values.names.qualname(call.func) or ""
    return qualname.startswith(TRAINER_ROOTS) and qualname.endswith(TRAINER_SUFFIX)


def _given(values: Values, trainer: cst.Call, callback: ClassInfo) -> bool:
    """An instance of ``callback`` is among the trainer's ``callbacks=``."""
    for arg in trainer.args:
        if arg.keyword is None or arg.keyword.value != "callbacks":
            continue
        held = values.containers.held(arg.value)
        members = held.members if held is not None else (arg.value,)
        for member in members:
            for leaf in values.origins(member):
                built = values.classes.constructed(leaf.node) if not leaf.path else None
                if built is not None and any(part is callback for part in built.lineage()):
                    return True
    return False
