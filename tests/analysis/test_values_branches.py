"""Value flow through branches: a name assigned in both arms of an ``if`` may hold
either value; an assignment in a branch the use is not in does not hide the one
before it."""

from __future__ import annotations

import libcst as cst

from dllint.analysis import ModuleFacts


def leaves(source: str, name: str = "model") -> set[str]:
    """The code of every leaf the last use of ``name`` comes from."""
    module = cst.parse_module(source)
    facts = ModuleFacts("t.py", source, module)
    uses = [n for n in facts.tree.nodes(cst.Name) if n.value == name]
    return {module.code_for_node(v.node) for v in facts.values.origins(uses[-1])}


def test_both_arms_of_an_if_reach_the_use() -> None:
    source = "if big:\n    model = Large()\nelse:\n    model = Small()\nprint(model)\n"
    assert leaves(source) == {"Large()", "Small()"}


def test_a_conditional_rebinding_keeps_the_earlier_value() -> None:
    source = "model = Net()\nif pretrained:\n    model = load()\nprint(model)\n"
    assert leaves(source) == {"load()", "Net()"}


def test_an_unconditional_rebinding_hides_the_earlier_value() -> None:
    source = "model = Net()\nif pretrained:\n    pass\nmodel = load()\nprint(model)\n"
    assert leaves(source) == {"load()"}


def test_a_binding_in_the_same_branch_as_the_use_is_certain() -> None:
    source = "model = Net()\nif pretrained:\n    model = load()\n    print(model)\n"
    assert leaves(source) == {"load()"}


def test_an_unfollowable_binding_stays_an_unknown_leaf() -> None:
    """An import in a ``try`` may have replaced ``Net()``: the name itself is a leaf
    (unknown), so no rule takes ``Net()`` as certain."""
    source = (
        "model = Net()\ntry:\n    from zoo import model\nexcept ImportError:\n    pass\n"
        "print(model)\n"
    )
    assert leaves(source) == {"Net()", "model"}
