"""DL105 augmentation-in-eval: random augmentations in the transform of a validation/test set."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from dllint.analysis.data import _words
from dllint.analysis.transforms import Construction, eval_word, transforms_of
from dllint.analysis.tree import argument, keyword, literal_value
from dllint.finding import Finding
from dllint.rule import Rule

# torchvision datasets whose second positional argument is ``train``.
TRAIN_POSITION = {"CIFAR10", "CIFAR100", "MNIST", "FashionMNIST", "KMNIST", "QMNIST", "USPS"}
SPLIT_KEYWORDS = ("split", "image_set", "subset", "mode")
# Calls that wrap a dataset without changing what it is (its name is the dataset's).
DATASET_WRAPPERS = {
    "torch.utils.data.DataLoader",
    "torch.utils.data.dataloader.DataLoader",
    "torch.utils.data.Subset",
    "torch.utils.data.dataset.Subset",
}
AUGMENT_WORDS = {"aug", "augs", "augment", "augmentation", "augmentations"}
PATH_SPLIT = re.compile(r"[/\\]")


class AugmentationInEval(Rule):
    code = "DL105"
    name = "augmentation-in-eval"
    summary = "random augmentation transforms in the transform of a validation or test dataset"
    severity = "error"
    needs = (
        ("Random", "ColorJitter", "AutoAugment", "AugMix", "Flip", "Rotate", "Affine", "Jitter"),
        ("transform", "Compose"),
    )

    def check(self) -> Iterator[Finding]:
        transforms = transforms_of(self.facts)
        for call in self.facts.calls():
            made = transforms.construction(call)
            if made is None or made.transform is None:
                continue
            steps = transforms.steps(made.transform)
            if not steps:
                continue
            random = [s for s in steps if s is not None and transforms.is_random(s)]
            if not random:
                continue
            why = self._held_out(made)
            if why is None or self._deliberate(made):
                continue
            yield self.finding(call, self._message(made, why, random))

    # -- is this dataset held out? -----------------------------------------------------
    def _held_out(self, made: Construction) -> str | None:
        """Why the dataset is a validation/test set (``train=False``...), or None."""
        call = made.call
        qualname = self.facts.qualname(call.func) or ""
        short = qualname.rsplit(".", 1)[-1]
        train = keyword(call, "train")
        if train is None and short in TRAIN_POSITION and qualname.startswith("torchvision."):
            value = argument(call, 1)
            train_value = literal_value(value) if value is not None else None
        else:
            train_value = literal_value(train.value) if train is not None else None
        if train_value is True:
            return None
        for name in SPLIT_KEYWORDS:
            given = keyword(call, name)
            value = literal_value(given.value) if given is not None else None
            if isinstance(value, str):
                if eval_word(value) or value.lower() in ("testing", "validation"):
                    return f'`{name}="{value}"`'
                return None  # split="train", "unlabeled"...
        if train_value is False:
            return "`train=False`"
        names = self._names_of(call)
        if any("train" in _words(n) for n in names):
            return None
        for name in names:
            if any(eval_word(w) for w in _words(name)):
                return f"it is `{name}`"
        root = argument(call, 0, "root")
        folder = self._eval_folder(root) if qualname.startswith("torchvision.") else None
        if folder is not None:
            return f"it reads the `{folder}` folder"
        return None

    def _names_of(self, call: cst.Call) -> list[str]:
        """Names the dataset is assigned to, directly or through a DataLoader/Subset."""
        tree = self.facts.tree
        node: cst.CSTNode = call
        for _ in range(3):
            parent = tree.parent.get(node)
            if isinstance(parent, cst.Assign) and parent.value is node:
                targets = [t.target for t in parent.targets]
                return [t.value for t in targets if isinstance(t, cst.Name)]
            if isinstance(parent, cst.Arg):
                outer = tree.parent.get(parent)
                if isinstance(outer, cst.Call) and self.facts.qualname(outer.func) in (
                    DATASET_WRAPPERS
                ):
                    node = outer
                    continue
            return []
        return []

    def _eval_folder(self, root: cst.BaseExpression | None) -> str | None:
        """A literal path component of ``root`` named like val/test (``"data/val"``,
        ``os.path.join(base, "test")``, ``f"{base}/valid"``), following one name."""
        if root is None:
            return None
        expr = root
        if isinstance(expr, cst.Name):
            binding = self.facts.names.binding_at(expr.value, expr)
            if binding is None or binding.kind != "assign" or binding.value is None:
                return None
            expr = binding.value
        tree = self.facts.tree
        texts = []
        for node in tree.descendants(expr, cst.SimpleString, cst.FormattedStringText):
            value = literal_value(node) if isinstance(node, cst.SimpleString) else node.value
            if isinstance(value, str):
                texts.append(value)
        for text in texts:
            for part in PATH_SPLIT.split(text):
                if part and eval_word(part):
                    return part
        return None

    def _deliberate(self, made: Construction) -> bool:
        """Test-time augmentation: the transform or the dataset is named for it."""
        code = self.facts.module.code_for_node
        texts = [code(made.transform), *self._names_of(made.call)]
        for text in texts:
            words = set(_words(re.sub(r"\W+", "_", text)))
            if "tta" in words or (words & AUGMENT_WORDS and "test" in words):
                return True  # tta_transform, test_aug
        return False

    def _message(self, made: Construction, why: str, random) -> str:
        code = self.facts.module.code_for_node
        shown = ", ".join(f"`{code(s.call)}`" for s in random[:3])
        if len(random) > 3:
            shown += ", ..."
        return (
            f"`{code(made.call.func)}` builds a held-out dataset ({why}) with the transform "
            f"`{code(made.transform)}`, which applies random augmentation ({shown}): every "
            f"evaluation sees randomly altered images, so validation/test metrics are noisy "
            f"and biased; give it a deterministic transform (resize, center crop, "
            f"ToTensor, Normalize)."
        )
