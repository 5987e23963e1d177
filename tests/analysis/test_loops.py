import libcst as cst


def test_reach_includes_same_module_helpers_and_methods(snippet):
    s = snippet(
        """
        def clear(opt):
            opt.zero_grad()
        class Trainer:
            def step(self):
                self.optimizer.step()
        t = Trainer()
        for batch in loader:
            clear(optimizer)
            t.step()
        """
    )
    loop = s.facts.loops.all()[0]
    reached = {s.code(call) for call in s.facts.loops.reach(loop)}
    assert {"opt.zero_grad()", "self.optimizer.step()", "clear(optimizer)"} <= reached


def test_enclosing_loops_stop_at_the_function_boundary(snippet):
    s = snippet(
        """
        for epoch in range(3):
            def inner():
                for b in loader:
                    go()
            for b in loader:
                go()
        """
    )
    first, second = s.find("go()", cst.Call, 0), s.find("go()", cst.Call, 1)
    assert len(s.facts.loops.enclosing(first)) == 1
    assert len(s.facts.loops.enclosing(second)) == 2
