"""Image transforms and the datasets that apply them (DL104, DL105).

A transform expression resolves, through names and ``Compose([...])`` (torchvision
v1 and v2, albumentations), to the steps it runs in order: each a known library
transform (``Step``) or ``None`` where the element cannot be told. A dataset
construction (a ``torchvision.datasets`` class, or a same-file ``Dataset`` whose
``__getitem__`` calls a transform it was given) tells which transform it applies,
and to which item of each sample. Batches of a ``DataLoader`` over such a dataset
are followed back to it: ``for images, labels in loader`` gives item 0 of the
samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from dllint.analysis.classes import ClassInfo, first_param
from dllint.analysis.names import ITEM, ITER
from dllint.analysis.tree import argument, dotted, keyword, literal_value

if TYPE_CHECKING:
    from dllint.analysis import ModuleFacts

TORCHVISION = "torchvision.transforms."
ALBUMENTATIONS = "albumentations."
COMPOSES = {"Compose", "Sequential"}  # v2.Compose, A.Compose; A.Sequential
DATALOADERS = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
SUBSETS = {"torch.utils.data.Subset", "torch.utils.data.dataset.Subset"}
RANDOM_SPLIT = {"torch.utils.data.random_split", "torch.utils.data.dataset.random_split"}
# Iterating these yields what iterating their first argument yields.
ITER_WRAPPERS = {"tqdm.tqdm", "tqdm.auto.tqdm", "tqdm.notebook.tqdm", "iter"}
FLOAT_DTYPES = {"float", "float32", "float64", "float16", "bfloat16", "half", "double"}

# torchvision transforms that draw random parameters on every call.
TV_RANDOM = {
    "RandomCrop", "RandomResizedCrop", "RandomSizedCrop", "RandomHorizontalFlip",
    "RandomVerticalFlip", "RandomRotation", "RandomAffine", "RandomPerspective",
    "ColorJitter", "RandomGrayscale", "RandomErasing", "RandAugment", "AutoAugment",
    "TrivialAugmentWide", "AugMix", "RandomApply", "RandomChoice", "RandomOrder",
    "RandomInvert", "RandomPosterize", "RandomSolarize", "RandomAdjustSharpness",
    "RandomAutocontrast", "RandomEqualize", "ElasticTransform", "RandomZoomOut",
    "RandomIoUCrop", "RandomPhotometricDistort", "ScaleJitter", "RandomShortestSize",
    "RandomResize", "RandomChannelPermutation", "JPEG",
}  # fmt: skip
# albumentations transforms applied with probability p (random unless p is 0 or 1).
A_FLIPS = {"HorizontalFlip", "VerticalFlip", "Transpose", "RandomRotate90", "Flip"}
# albumentations transforms that draw random parameters (random unless p is 0).
A_RANDOM = {
    "RandomCrop", "RandomResizedCrop", "RandomSizedCrop", "ShiftScaleRotate", "Rotate",
    "SafeRotate", "Affine", "RandomBrightnessContrast", "HueSaturationValue",
    "ColorJitter", "CoarseDropout", "GaussNoise", "MotionBlur", "RandomGamma", "OneOf",
    "SomeOf", "GridDistortion", "ElasticTransform", "OpticalDistortion", "Perspective",
    "RandomScale", "RGBShift", "ChannelShuffle", "RandomShadow", "RandomFog",
    "RandomRain", "RandomSunShine", "RandomSnow", "CLAHE", "ToGray", "Cutout",
    "RandomSizedBBoxSafeCrop", "PadIfNeeded_random", "RandAugment", "ISONoise",
}  # fmt: skip
# Steps after a [0, 1] scaling that keep the values in that range (or normalise them:
# dividing by 255 is wrong either way). Anything else after the scaling is unknown.
TV_KEEP_SCALE = {
    "Normalize", "Resize", "CenterCrop", "Pad", "FiveCrop", "TenCrop", "Grayscale",
    "GaussianBlur", "ToImage", "ToPureTensor", "SanitizeBoundingBoxes", "ClampBoundingBoxes",
} | TV_RANDOM  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One transform in a pipeline: its construction, library and class name."""

    call: cst.Call
    library: str  # "torchvision" or "albumentations"
    name: str


@dataclass(frozen=True)
class Construction:
    """A dataset construction and the transform it applies to item ``item`` of each
    sample (``transform`` None: no transform given)."""

    call: cst.Call
    transform: cst.BaseExpression | None
    item: int


class Transforms:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        self.names = facts.names
        self.values = facts.values
        self.tree = facts.tree

    # -- pipelines --------------------------------------------------------------------
    def steps(self, expr: cst.BaseExpression | None, depth: int = 0) -> list[Step | None] | None:
        """The steps ``expr`` runs, in order; None when it is not a known transform at
        all. An element that cannot be told is a ``None`` step."""
        if expr is None or depth > 8:
            return None
        leaves = self.values.origins(expr)
        if len(leaves) != 1 or leaves[0].path:
            return None
        node = leaves[0].node
        if not isinstance(node, cst.Call):
            return None
        step = self.step(node)
        if step is None:
            return None
        if step.name in COMPOSES:
            contents = argument(node, 0, "transforms")
            return self._listed(contents, depth + 1)
        return [step]

    def _listed(self, expr: cst.BaseExpression | None, depth: int) -> list[Step | None] | None:
        if expr is None or depth > 8:
            return None
        leaves = self.values.origins(expr)
        if len(leaves) != 1 or leaves[0].path:
            return None
        node = leaves[0].node
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            left, right = self._listed(node.left, depth + 1), self._listed(node.right, depth + 1)
            return left + right if left is not None and right is not None else None
        if not isinstance(node, (cst.List, cst.Tuple)):
            return None
        found: list[Step | None] = []
        for element in node.elements:
            if isinstance(element, cst.StarredElement):
                found.append(None)
                continue
            inner = self.steps(element.value, depth + 1)
            found.extend(inner if inner is not None else [None])
        return found

    def step(self, call: cst.Call) -> Step | None:
        qualname = self.names.qualname(call.func)
        if qualname is None:
            return None
        name = qualname.rsplit(".", 1)[-1]
        if qualname.startswith(TORCHVISION):
            return Step(call, "torchvision", name)
        if qualname.startswith(ALBUMENTATIONS):
            return Step(call, "albumentations", name)
        return None

    def is_random(self, step: Step) -> bool:
        """True when the step draws a random change on every call."""
        given = keyword(step.call, "p")
        p = literal_value(given.value) if given is not None else None
        if step.library == "torchvision":
            if step.name not in TV_RANDOM:
                return False
            position = {"RandomApply": 1, "RandomHorizontalFlip": 0, "RandomVerticalFlip": 0}
            if step.name in position:
                given = argument(step.call, position[step.name], "p")
                p = literal_value(given) if given is not None else None
            if step.name in ("RandomHorizontalFlip", "RandomVerticalFlip") and p == 1:
                return False  # always flips: deterministic
            return p != 0
        if step.name in A_FLIPS:
            return p not in (0, 1, 0.0, 1.0)
        return step.name in A_RANDOM and p != 0

    def scales_to_unit(self, steps: list[Step | None]) -> Step | None:
        """The step that turns pixels into floats in [0, 1] (``ToTensor()``,
        ``v2.ToDtype(torch.float32, scale=True)``, ``ConvertImageDtype(torch.float)``)
        when every step after it is known to keep that range; else None."""
        last = None
        for index, step in enumerate(steps):
            if step is not None and self._scaling(step):
                last = index
        if last is None:
            return None
        for step in steps[last + 1 :]:
            if step is None or step.library != "torchvision" or step.name not in TV_KEEP_SCALE:
                return None
        return steps[last]

    def _scaling(self, step: Step) -> bool:
        if step.library != "torchvision":
            return False
        if step.name == "ToTensor":
            return True
        if step.name == "ConvertImageDtype":
            return self._float_dtype(argument(step.call, 0, "dtype"))
        if step.name == "ToDtype":
            scale = keyword(step.call, "scale")
            if scale is None or literal_value(scale.value) is not True:
                return False
            return self._float_dtype(argument(step.call, 0, "dtype"))
        return False

    def _float_dtype(self, expr: cst.BaseExpression | None) -> bool:
        if expr is None:
            return False
        qualname = self.names.qualname(expr)
        return (
            qualname is not None
            and qualname.startswith("torch.")
            and (qualname.rsplit(".", 1)[-1] in FLOAT_DTYPES)
        )

    # -- datasets ---------------------------------------------------------------------
    def construction(self, call: cst.CSTNode) -> Construction | None:
        """What a dataset construction applies: a torchvision dataset's ``transform``
        (to item 0, the image), or the transform a same-file dataset class calls in
        ``__getitem__`` on one item of the sample it returns."""
        if not isinstance(call, cst.Call):
            return None
        qualname = self.names.qualname(call.func)
        if qualname is not None and qualname.startswith("torchvision.datasets."):
            name = qualname.rsplit(".", 1)[-1]
            position = TRANSFORM_POSITION.get(name)
            transform = argument(call, position if position is not None else 99, "transform")
            return Construction(call, transform, 0)
        info = self.facts.classes.constructed(call)
        if info is None:
            return None
        return self._class_construction(info, call)

    def _class_construction(self, info: ClassInfo, call: cst.Call) -> Construction | None:
        getitem = info.method("__getitem__")
        init = info.method("__init__")
        if getitem is None or init is None:
            return None
        self_name = first_param(getitem)
        returns = self.values.returns(getitem)
        if self_name is None or len(returns) != 1 or not isinstance(returns[0], cst.Tuple):
            return None
        for index, element in enumerate(returns[0].elements):
            attribute = self._applied_attribute(element.value, self_name)
            if attribute is None:
                continue
            assigned = info.attribute_values(attribute)
            if len(assigned) != 1:
                return None
            transform = self._init_argument(init, assigned[0], call)
            if transform is None:
                return None
            return Construction(call, transform, index)
        return None

    def _applied_attribute(self, expr: cst.BaseExpression, self_name: str) -> str | None:
        """``transform`` when ``expr`` is (a name for) ``self.transform(x)`` or
        ``self.transform(image=x)["image"]``."""
        for leaf in self.values.origins(expr):
            node = leaf.node
            if leaf.path:
                continue
            if isinstance(node, cst.Subscript):
                node = node.value
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                owner = node.func.value
                if isinstance(owner, cst.Name) and owner.value == self_name:
                    return node.func.attr.value
        return None

    def _init_argument(self, init: cst.FunctionDef, value, call: cst.Call):
        """The argument ``call`` passes to the ``__init__`` parameter ``value`` names
        (or ``value`` itself when it is not a parameter)."""
        if not isinstance(value, cst.Name):
            return value
        params = [*init.params.posonly_params, *init.params.params]
        names = [p.name.value for p in params][1:]
        kwonly = [p.name.value for p in init.params.kwonly_params]
        if value.value not in names and value.value not in kwonly:
            return None
        binding = self.names.binding_at(value.value, value)
        if binding is None or binding.kind != "param":
            return None
        given = keyword(call, value.value)
        if given is not None:
            return given.value
        if value.value in names:
            positional = [a for a in call.args if a.keyword is None]
            position = names.index(value.value)
            if any(a.star for a in positional[: position + 1]):
                return None
            if position < len(positional):
                return positional[position].value
        return None  # the default: usually None, no transform

    def datasets_of(self, loader: cst.Call) -> list[cst.BaseExpression]:
        dataset = argument(loader, 0, "dataset")
        return [dataset] if dataset is not None else []

    def sample_item_source(self, expr: cst.BaseExpression, through=None):
        """For an expression holding one item of a dataset's samples (directly, or
        batched by a ``DataLoader``), every ``(Construction, item)`` it comes from;
        None when any origin is something else."""
        found = []
        for leaf in self.values.origins(expr, through=through):
            result = self._sample_leaf(leaf.node, leaf.path, through, 0)
            if result is None:
                return None
            found.extend(result)
        return found or None

    def _sample_leaf(self, node, path, through, depth):
        if depth > 6 or not isinstance(node, cst.Call):
            return None
        qualname = self.names.qualname(node.func)
        first = argument(node, 0)
        if qualname == "enumerate" or (qualname is None and dotted(node.func) == "enumerate"):
            if path[:2] == ((ITER,), (ITEM, 1)) and first is not None:
                return self._follow(first, ((ITER,),) + path[2:], through, depth)
            return None
        if qualname in ITER_WRAPPERS or dotted(node.func) in ("iter", "tqdm"):
            return self._follow(first, path, through, depth) if first is not None else None
        if dotted(node.func) == "next" and first is not None:
            return self._follow(first, ((ITER,),) + path, through, depth)
        if qualname in DATALOADERS:
            if not path or path[0] != (ITER,):
                return None
            # A batch holds the samples' items stacked: item i of a batch is item i.
            dataset = argument(node, 0, "dataset")
            if dataset is None:
                return None
            return self._follow(dataset, ((ITEM, -1),) + path[1:], through, depth)
        return self._dataset_leaf(node, path, through, depth)

    def _dataset_leaf(self, node, path, through, depth):
        """``path`` selects one sample (ITER, or ITEM of any index) and then an item."""
        qualname = self.names.qualname(node.func)
        first = argument(node, 0, "dataset")
        if qualname in SUBSETS and first is not None:
            return self._follow(first, path, through, depth)
        if qualname in RANDOM_SPLIT and path and path[0][0] == ITEM and first is not None:
            return self._follow(first, path[1:], through, depth)
        made = self.construction(node)
        if made is None or len(path) != 2:
            return None
        if path[0][0] not in (ITER, ITEM) or path[1][0] != ITEM:
            return None
        return [(made, path[1][1])]

    def _follow(self, expr, path, through, depth):
        found = []
        for leaf in self.values.origins(expr, through=through):
            result = self._sample_leaf(leaf.node, leaf.path + path, through, depth + 1)
            if result is None:
                return None
            found.extend(result)
        return found


# Positional index of ``transform`` in torchvision dataset constructors.
TRANSFORM_POSITION = {
    "CIFAR10": 2, "CIFAR100": 2, "MNIST": 2, "FashionMNIST": 2, "KMNIST": 2,
    "ImageFolder": 1, "DatasetFolder": 3, "SVHN": 2, "STL10": 3,
}  # fmt: skip
EVAL_WORDS = {"val", "valid", "validation", "test", "testing", "eval", "evaluation", "dev",
              "holdout", "heldout"}  # fmt: skip
EVAL_JOINED = re.compile(r"(val|valid|test|eval)(set|data|dataset|ds|loader|imgs|images)")


def eval_word(word: str) -> bool:
    word = word.lower()
    return word in EVAL_WORDS or EVAL_JOINED.fullmatch(word) is not None


def transforms_of(facts: ModuleFacts) -> Transforms:
    """The module's ``Transforms`` analysis, computed once per module."""
    cached = facts.__dict__.get("_transforms")
    if cached is None:
        cached = facts.__dict__["_transforms"] = Transforms(facts)
    return cached
