"""DL201 init-activation-mismatch: an init gain derived for a different activation.

He/Kaiming init with the ReLU gain on a layer whose output goes through tanh or
sigmoid, or Xavier/Glorot init with its default gain on a layer followed by a
ReLU-family activation. Found on ``self.fc1.weight``, ``model[0].weight`` and on
``m.weight`` in a loop or ``apply`` function over a model's modules (then every
layer of the guarded type must be followed by the wrong activation).
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.layers import Follow, Layer, Layers, Selection, layers_of
from dllint.analysis.tree import argument, literal_value
from dllint.finding import Finding
from dllint.rule import Rule

INIT = "torch.nn.init."
KAIMING = {f"{INIT}{name}{s}" for name in ("kaiming_normal", "kaiming_uniform") for s in ("_", "")}
XAVIER = {f"{INIT}{name}{s}" for name in ("xavier_normal", "xavier_uniform") for s in ("_", "")}
RELU_GAIN_NONLINEARITIES = ("relu", "leaky_relu")
ACTIVATION_NAMES = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "a ReLU-family activation"}


class InitActivationMismatch(Rule):
    code = "DL201"
    name = "init-activation-mismatch"
    summary = "Kaiming init before tanh/sigmoid, or default-gain Xavier init before ReLU"
    severity = "warning"
    needs = (("kaiming", "xavier"), ("torch",))

    def check(self) -> Iterator[Finding]:
        layers = layers_of(self.facts)
        for call in self.facts.calls():
            scheme = self.facts.qualname(call.func)
            wrong_for = mismatched_families(scheme, call)
            if not wrong_for:
                continue
            module = weight_owner(argument(call, 0, "tensor"))
            if module is None:
                continue
            init = self.facts.module.code_for_node(call.func)
            layer = layers.layer_of(module)
            if layer is not None:
                follow = layers.following(layer)
                if follow.family in wrong_for and not self._normalised(layers, layer):
                    yield self.finding(call, layer_message(init, layer.label, follow))
                continue
            if isinstance(module, cst.Name):
                for selection in layers.selections(module):
                    follow = self._every_layer_follow(layers, selection, wrong_for)
                    if follow is not None:
                        yield self.finding(call, loop_message(init, module.value, selection,
                                                              layers, follow))  # fmt: skip
                        break

    def _normalised(self, layers: Layers, layer: Layer) -> bool:
        model = layer.owner if layer.owner is not None else layer.container
        return model is not None and layers.normalised(model)

    def _every_layer_follow(self, layers: Layers, selection: Selection, wrong_for) -> Follow | None:
        """The wrong activation, when every selected layer with an activation is
        followed by it (output layers aside) and nothing else is unclear."""
        inventory = layers.inventory(selection.model)
        if not inventory.complete or layers.normalised(selection.model):
            return None
        wrong = None
        for layer in inventory.layers:
            if not layers.admits(selection, layer):
                continue
            follow = layers.following(layer)
            if follow.kind == "output" and not inventory.is_nested(layer):
                continue  # an output layer: no activation to match
            if follow.family not in wrong_for:
                return None  # the right activation, another op, or unknown
            wrong = wrong or follow
        return wrong


def mismatched_families(scheme: str | None, call: cst.Call) -> tuple[str, ...]:
    """The activations this init call's gain is wrong for."""
    if scheme in KAIMING:
        a = argument(call, 1, "a")
        nonlinearity = argument(call, 3, "nonlinearity")
        name = "leaky_relu" if nonlinearity is None else literal_value(nonlinearity)
        if name not in RELU_GAIN_NONLINEARITIES:
            return ()  # a deliberate gain (tanh, sigmoid, linear...) or unknown
        if name == "leaky_relu" and a is not None and literal_value(a) not in (0, 0.0):
            return ()  # a chosen negative slope, e.g. a=math.sqrt(5) as nn.Linear does
        return ("tanh", "sigmoid")
    if scheme in XAVIER:
        gain = argument(call, 1, "gain")
        if gain is None or literal_value(gain) in (1, 1.0) and literal_value(gain) is not True:
            return ("relu",)
    return ()


def weight_owner(target: cst.BaseExpression | None) -> cst.BaseExpression | None:
    """``self.fc1`` for ``self.fc1.weight`` (or ``self.fc1.weight.data``)."""
    if isinstance(target, cst.Attribute) and target.attr.value == "data":
        target = target.value
    if isinstance(target, cst.Attribute) and target.attr.value == "weight":
        return target.value
    return None


def explanation(family: str) -> str:
    """Why the gain is wrong for what follows, and the fix."""
    if family == "sigmoid":
        return (
            "He init doubles the weight variance to make up for ReLU zeroing half the "
            "signal, which pushes sigmoid units into their flat tails where gradients "
            "vanish; pass `nonlinearity='sigmoid'` or use `nn.init.xavier_uniform_`"
        )
    if family == "tanh":
        return (
            "He init's gain makes up for ReLU zeroing half the signal, which tanh does "
            "not do, so the layer starts at a scale derived for the wrong activation; pass "
            "`nonlinearity='tanh'` or use `nn.init.xavier_uniform_(..., "
            "gain=nn.init.calculate_gain('tanh'))`"
        )
    return (
        "Xavier's default gain assumes a roughly linear unit, but ReLU-like activations "
        "zero about half the signal, so activations and gradients shrink layer by layer; "
        "pass `gain=nn.init.calculate_gain('relu')` or use "
        "`nn.init.kaiming_uniform_(..., nonlinearity='relu')`"
    )


def _op(follow: Follow) -> str:
    """The user's spelling of the activation, with its family when the name hides it."""
    label = follow.label or ""
    family = follow.family or ""
    shown = {"relu": ("relu", "elu", "gelu", "silu")}.get(family, (family,))
    if any(name in label.lower() for name in shown):
        return f"`{label}`"
    return f"`{label}` ({follow.qualname.rsplit('.', 1)[-1]})"


def _gain_phrase(family: str) -> str:
    return "the ReLU gain (sqrt 2)" if family in ("tanh", "sigmoid") else "the default gain 1"


def layer_message(init: str, label: str, follow: Follow) -> str:
    family = follow.family or ""
    return (
        f"`{init}` initialises `{label}.weight` with {_gain_phrase(family)}, but "
        f"`{label}`'s output goes through {_op(follow)}: {explanation(family)}."
    )


def loop_message(init, var, selection: Selection, layers: Layers, follow: Follow) -> str:
    family = follow.family or ""
    kinds = ", ".join(sorted(f"nn.{kind.rsplit('.', 1)[-1]}" for kind in selection.kinds))
    model = layers.model_label(selection.model)
    return (
        f"`{init}({var}.weight)` gives every {kinds} of `{model}` {_gain_phrase(family)}, "
        f"but their outputs go through {_op(follow)}: {explanation(family)}."
    )
