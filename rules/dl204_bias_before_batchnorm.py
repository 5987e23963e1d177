"""DL204 bias-before-batchnorm: a conv/linear bias that the next BatchNorm cancels.

BatchNorm subtracts the per-channel batch mean, so a per-channel constant added just
before it (the bias of a ``Conv*d``/``ConvTranspose*d``/``Linear``) has no effect on
the output: it is a wasted parameter. A hint, off by default: results do not change,
and a port of published weights must keep the biases its checkpoint has.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.layers import Layer, layers_of, normalise_qualname
from dllint.analysis.tree import argument, literal_value
from dllint.analysis.values import SEQUENTIAL
from dllint.finding import Finding
from dllint.rule import Rule

NN = "torch.nn."
# Layer class -> (position of the `bias` argument, BatchNorm classes matching its output).
_BN = {d: {f"{NN}BatchNorm{d}d", f"{NN}LazyBatchNorm{d}d", f"{NN}SyncBatchNorm"} for d in (1, 2, 3)}
BIASED = {
    f"{NN}Linear": (2, _BN[1]),
    f"{NN}LazyLinear": (1, _BN[1]),
    **{f"{NN}Conv{d}d": (7, _BN[d]) for d in (1, 2, 3)},
    **{f"{NN}ConvTranspose{d}d": (7, _BN[d]) for d in (1, 2, 3)},
    **{f"{NN}LazyConv{d}d": (6, _BN[d]) for d in (1, 2, 3)},
    **{f"{NN}LazyConvTranspose{d}d": (6, _BN[d]) for d in (1, 2, 3)},
}
# Downloading published weights: the file's layers mirror a checkpoint that has the biases.
PRETRAINED_LOADERS = {
    "torch.utils.model_zoo.load_url",
    "torch.hub.load_state_dict_from_url",
    "torchvision.models.utils.load_state_dict_from_url",
    "torchvision._internally_replaced_utils.load_state_dict_from_url",
}
# Loading a state dict into the file's layers: they must keep the checkpoint's parameters.
LOADING_METHODS = ("load_state_dict", "load_state_dict_from_url")
# Base classes of model-zoo ports (transformers' PreTrainedModel and its per-model subclasses).
PRETRAINED_BASE_SUFFIX = "pretrainedmodel"


class BiasBeforeBatchNorm(Rule):
    code = "DL204"
    name = "bias-before-batchnorm"
    summary = "Conv/Linear layer with a bias that the BatchNorm right after it cancels"
    severity = "note"
    default_enabled = False
    needs = (("BatchNorm",), ("Conv", "Linear"))

    def check(self) -> Iterator[Finding]:
        if self.loads_published_weights() or self.defines_pretrained_model():
            return  # bias=False would break loading the checkpoint the layers mirror
        layers = layers_of(self.facts)
        for call in self.facts.calls():
            kind = normalise_qualname(self.facts.qualname(call.func))
            if kind not in BIASED or not has_bias(call, BIASED[kind][0]):
                continue
            layer = self._layer(call, kind)
            if layer is None:
                continue
            follow = layers.following(layer, strict=True)
            if follow.kind == "op" and follow.qualname in BIASED[kind][1]:
                norm = follow.label or ""
                short = follow.qualname.rsplit(".", 1)[1]
                if short not in norm:
                    norm = f"{norm}` ({short})"
                else:
                    norm = f"{norm}`"
                yield self.finding(call, self.message(call, layer, norm))

    def loads_published_weights(self) -> bool:
        """Does the file download a published checkpoint (``model_zoo.load_url``...) or
        load a state dict (``model.load_state_dict(...)``) into its layers?"""
        for call in self.facts.calls():
            if self.facts.qualname(call.func) in PRETRAINED_LOADERS:
                return True
            func = call.func
            name = func.attr.value if isinstance(func, cst.Attribute) else None
            name = func.value if isinstance(func, cst.Name) else name
            if name in LOADING_METHODS:
                return True
        return False

    def defines_pretrained_model(self) -> bool:
        """Does the file define a ``PreTrainedModel`` subclass (a model-zoo port)?"""
        for info in self.facts.classes.by_node.values():
            for base in info.node.bases:
                expr = base.value
                name = expr.attr.value if isinstance(expr, cst.Attribute) else None
                name = expr.value if isinstance(expr, cst.Name) else name
                if name and name.lower().endswith(PRETRAINED_BASE_SUFFIX):
                    return True
        return False

    def _layer(self, call: cst.Call, kind: str) -> Layer | None:
        """The layer this construction is: an element of an ``nn.Sequential`` (built in
        the call or from a list of layers) or a ``self.`` attribute of an in-module model
        class."""
        positions = self.facts.values.containers.positions(call)
        if positions:
            if len(positions) != 1:
                return None  # the same layer object in two containers
            found = positions[0]
            if not self._is_sequential(found.container):
                return None
            label = self.facts.module.code_for_node(call)
            return Layer(call, kind, label, None, None, found.container, found.index, found.member)
        parent = self.facts.tree.parent.get(call)
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = parent.targets[0].target
            if isinstance(target, cst.Attribute):
                layer = layers_of(self.facts).layer_of(target)
                return layer if layer is not None and layer.node is call else None
        return None

    def _is_sequential(self, call: cst.Call) -> bool:
        return normalise_qualname(self.facts.qualname(call.func)) == SEQUENTIAL

    def message(self, call: cst.Call, layer: Layer, norm: str) -> str:
        code = " ".join(self.facts.module.code_for_node(call).split())
        if len(code) > 50:
            code = code[:47] + "..."
        named = f" (`{layer.label}`)" if layer.attribute is not None else ""
        return (
            f"`{code}`{named} has a bias, but its output goes straight into `{norm}, whose "
            f"mean subtraction cancels it: pass `bias=False` to save the parameters (a hint: "
            f"results do not change)."
        )


def has_bias(call: cst.Call, position: int) -> bool:
    """True when the layer keeps its default ``bias=True`` (or says ``True`` literally)."""
    if any(arg.star for arg in call.args):
        return False  # **kwargs / *args may set it
    value = argument(call, position, "bias")
    return value is None or literal_value(value) is True
