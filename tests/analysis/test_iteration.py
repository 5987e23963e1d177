import libcst as cst

from dllint.analysis.iteration import iteration_of

CODE = """
def helper():
    opt.step()

for x in loader:
    a()
    if c:
        b()
        continue
    else:
        d()
    helper()
"""


def test_events_in_run_order_with_guards_and_helpers(snippet):
    s = snippet(CODE)
    loop = s.facts.tree.nodes(cst.For)[0]
    events = iteration_of(s.facts).events(loop)
    texts = [s.code(e.node) for e in events]
    assert texts == ["a()", "b()", "d()", "helper()", "opt.step()"]
    a, b, d, _, step = events
    assert not b.may_run_with(d)
    assert not b.may_run_with(step)  # b's arm ends the iteration
    assert d.may_run_with(step) and a.runs_whenever(step)
    assert not d.runs_whenever(a)
    assert step.via and s.code(step.via[0]) == "helper()"
