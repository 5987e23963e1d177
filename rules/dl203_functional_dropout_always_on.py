"""DL203 functional-dropout-always-on: ``F.dropout(x)`` in ``forward`` ignores eval mode.

The functional form does not know the module's mode: ``F.dropout`` defaults to
``training=True`` and keeps dropping activations after ``model.eval()``, while
``F.alpha_dropout``/``F.feature_alpha_dropout`` default to ``training=False`` and never
drop anything, even while training. ``training=self.training`` ties it to the mode.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from dllint.analysis.classes import MODULE_BASES
from dllint.analysis.syntax import call_arguments_known, method_self
from dllint.analysis.tree import argument, dotted
from dllint.finding import Finding
from dllint.fixes import Fix
from dllint.rule import Rule

ALWAYS_ON = {
    f"torch.nn.functional.{name}" for name in ("dropout", "dropout1d", "dropout2d", "dropout3d")
}
ALWAYS_OFF = {f"torch.nn.functional.{name}" for name in ("alpha_dropout", "feature_alpha_dropout")}
MODULE_BASE_PREFIXES = ("torch.nn.",)
TRANSFORMERS_BASES = ("transformers.PreTrainedModel", "transformers.modeling_utils.PreTrainedModel")


def implies_training(test: cst.BaseExpression, owner: str, truth: bool) -> bool:
    """Does ``test`` evaluating to ``truth`` mean ``owner.training`` is true?"""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return implies_training(test.expression, owner, not truth)
    if isinstance(test, cst.BooleanOperation):
        if truth and isinstance(test.operator, cst.And):
            return implies_training(test.left, owner, True) or implies_training(
                test.right, owner, True
            )
        if not truth and isinstance(test.operator, cst.Or):
            return implies_training(test.left, owner, False) or implies_training(
                test.right, owner, False
            )
        return False
    return truth and dotted(test) == f"{owner}.training"


def ends_with_exit(block: cst.BaseSuite) -> bool:
    """The block ends with ``return`` or ``raise``."""
    if isinstance(block, cst.IndentedBlock):
        statements = block.body
        if not statements or not isinstance(statements[-1], cst.SimpleStatementLine):
            return False
        small = statements[-1].body
    elif isinstance(block, cst.SimpleStatementSuite):
        small = block.body
    else:
        return False
    return bool(small) and isinstance(small[-1], (cst.Return, cst.Raise))


class FunctionalDropoutAlwaysOn(Rule):
    code = "DL203"
    name = "functional-dropout-always-on"
    summary = "functional dropout in forward without training=, so eval mode does not affect it"
    severity = "error"
    fixable = True
    needs = (("dropout",), ("forward",))

    def check(self) -> Iterator[Finding]:
        for call in self.facts.calls():
            qualname = self.facts.qualname(call.func)
            if qualname not in ALWAYS_ON and qualname not in ALWAYS_OFF:
                continue
            if not call_arguments_known(call) or argument(call, 0, "input") is None:
                continue
            if argument(call, 2, "training") is not None:
                continue  # an explicit choice, even training=True
            forward = self.facts.tree.function_of(call)
            if forward is None or forward.name.value != "forward":
                continue
            if not self.in_module_class(forward):
                continue
            owner = method_self(self.facts, forward)
            if qualname in ALWAYS_ON and owner and self.only_while_training(call, forward, owner):
                continue  # runs only in training mode, where training=True is right
            yield self.finding(
                call,
                self.message(call, qualname, owner or "self"),
                fix=self.fix(call, owner),
            )

    def only_while_training(self, call: cst.Call, function: cst.FunctionDef, owner: str) -> bool:
        """Does ``call`` run only when ``owner.training`` is true?

        Inside ``if owner.training [and ...]:`` (or the else branch of ``if not
        owner.training``), the same as a conditional expression, or after an early
        ``if not owner.training: return ...`` at the top of the function.
        """
        tree = self.facts.tree
        child: cst.CSTNode = call
        for node in tree.ancestors(call):
            if node is function:
                break
            if isinstance(node, (cst.If, cst.IfExp)):
                if child is node.body and implies_training(node.test, owner, True):
                    return True
                if child is node.orelse and implies_training(node.test, owner, False):
                    return True
            child = node
        statement = tree.statement_of(call)
        body = function.body.body if isinstance(function.body, cst.IndentedBlock) else ()
        for top in body:
            if tree.contains(top, statement):
                break
            if (
                isinstance(top, cst.If)
                and top.orelse is None
                and implies_training(top.test, owner, False)
                and ends_with_exit(top.body)
            ):
                return True
        return False

    def in_module_class(self, function: cst.FunctionDef) -> bool:
        """Is ``function`` a method of an ``nn.Module`` (or Lightning/transformers) class?"""
        if method_self(self.facts, function) is None:
            return False
        info = self.facts.classes.enclosing(function)
        if info is None:
            return False
        for klass in info.lineage():
            for base in klass.base_names:
                if base and (
                    base in MODULE_BASES
                    or base in TRANSFORMERS_BASES
                    or base.startswith(MODULE_BASE_PREFIXES)
                ):
                    return True
        return False

    def fix(self, call: cst.Call, owner: str | None) -> Fix | None:
        if owner is None:
            return None
        tree = self.facts.tree
        if any(isinstance(a, cst.Lambda) for a in tree.ancestors(call)):
            return None  # a lambda's parameter might shadow the method's first one
        value = cst.Attribute(value=cst.Name(owner), attr=cst.Name("training"))
        added = cst.Arg(
            keyword=cst.Name("training"),
            value=value,
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            ),
        )
        args = list(call.args)
        last = args[-1]
        if len(args) > 1 and isinstance(args[-2].comma, cst.Comma):
            between = args[-2].comma.whitespace_after  # the layout between arguments
        elif isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
            between = call.whitespace_before_args  # one argument per line
        else:
            between = cst.SimpleWhitespace(" ")
        if isinstance(last.comma, cst.Comma):
            # the trailing comma (and the layout up to ``)``) moves to the new argument
            args[-1] = last.with_changes(comma=last.comma.with_changes(whitespace_after=between))
            added = added.with_changes(comma=last.comma)
        else:
            args[-1] = last.with_changes(
                comma=cst.Comma(whitespace_after=between),
                whitespace_after_arg=cst.SimpleWhitespace(""),
            )
            added = added.with_changes(whitespace_after_arg=last.whitespace_after_arg)
        args.append(added)
        text = f"training={owner}.training"
        return Fix(f"pass `{text}`", ((call, call.with_changes(args=args)),))

    def message(self, call: cst.Call, qualname: str, owner: str) -> str:
        name = self.facts.module.code_for_node(call.func)
        if qualname in ALWAYS_OFF:
            return (
                f"`{name}(...)` in `forward` has no `training=` argument and defaults to "
                f"`training=False`, so it never drops anything, not even while training; "
                f"pass `training={owner}.training`."
            )
        return (
            f"`{name}(...)` in `forward` has no `training=` argument and defaults to "
            f"`training=True`, so it keeps dropping activations after `model.eval()` and "
            f"makes evaluation and inference noisy; pass `training={owner}.training` "
            f"(or use an `nn.Dropout` layer)."
        )
