import libcst as cst


def test_names_follow_assignments_and_tuple_unpacking(snippet):
    s = snippet(
        """
        a, (b, c) = 1, (f(), g())
        use(c)
        """
    )
    assert s.origins("c", cst.Name, 1) == [("g()", ())]


def test_unknown_tuple_source_keeps_the_item_selector(snippet):
    s = snippet(
        """
        logits, probas = model(x)
        use(logits)
        """
    )
    assert s.origins("logits", cst.Name, 1) == [("model(x)", (("item", 0),))]


def test_model_call_follows_forward_through_sequential_to_the_last_layer(snippet):
    s = snippet(
        """
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Linear(4, 4)
                self.head = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))
            def forward(self, x):
                return self.head(self.body(x))
        def build():
            return Net().to("cpu")
        model = build()
        out = model(x)
        """
    )
    assert s.origins("out", cst.Name, 0) == [("nn.Softmax(dim=1)", (("call",),))]


def test_forward_tuple_return_selects_the_element(snippet):
    s = snippet(
        """
        import torch.nn as nn
        import torch.nn.functional as F
        class Net(nn.Module):
            def forward(self, x):
                logits = self.fc(x)
                return logits, F.softmax(logits, dim=1)
        model = Net()
        logits, probas = model(x)
        loss = crit(logits, y)
        """
    )
    assert s.origins("logits", cst.Name, 3) == [("self.fc(x)", ())]
    assert s.origins("probas", cst.Name, 0) == [("F.softmax(logits, dim=1)", ())]


def test_parameters_follow_call_site_arguments(snippet):
    s = snippet(
        """
        def train(model, crit):
            return crit(model(x), y)
        train(net_a, nn.MSELoss())
        train(net_b, crit=nn.L1Loss())
        """
    )
    assert sorted(s.origins("crit", cst.Name, 1)) == [("nn.L1Loss()", ()), ("nn.MSELoss()", ())]


def test_parameter_without_call_site_is_a_leaf(snippet):
    s = snippet(
        """
        def evaluate(model, loader):
            return model(x)
        """
    )
    assert s.origins("model", cst.Name, 1) == [("model", ())]


def test_self_call_inside_a_module_is_its_forward(snippet):
    s = snippet(
        """
        import torch
        import pytorch_lightning as pl
        class Lit(pl.LightningModule):
            def forward(self, x):
                return torch.softmax(self.net(x), dim=-1)
            def training_step(self, batch, idx):
                x, y = batch
                out = self(x)
                return out
        """
    )
    assert s.origins("out", cst.Name, 1) == [("torch.softmax(self.net(x), dim=-1)", ())]
    lit = next(iter(s.facts.classes.by_node.values()))
    assert lit.is_module and lit.is_lightning


def test_for_targets_record_iteration_and_item(snippet):
    s = snippet(
        """
        for xb, yb in loader:
            use(yb)
        """
    )
    assert s.origins("yb", cst.Name, 1) == [("loader", (("iter",), ("item", 1)))]


def test_attribute_of_an_instance_reads_the_class_attributes(snippet):
    s = snippet(
        """
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                self.fc1 = nn.Linear(3, 3)
        model = Net()
        w = model.fc1
        """
    )
    assert s.origins("w", cst.Name, 0) == [("nn.Linear(3, 3)", ())]


def test_recursive_definitions_terminate(snippet):
    s = snippet(
        """
        def f(x):
            return f(x)
        y = f(1)
        """
    )
    assert s.origins("y", cst.Name, 0)  # a leaf, and no RecursionError


def test_origins_of_a_recursive_walk_terminate(snippet):
    # v -> result.items() -> result (a parameter) -> the call site's v -> ...
    s = snippet(
        """
        class Model:
            def count(self, result, n=0):
                for k, v in result.items():
                    n += self.count(v)
                return n
        """
    )
    leaves = s.origins("v", cst.Name, 1)
    assert leaves


def test_recursive_calls_with_growing_selectors_stay_fast(snippet):
    # parse(out) calls parse(out[0]) and parse(out[1]) from several places: the selector
    # path grows at every turn, so only the step budget bounds the walk.
    import time

    s = snippet(
        """
        def parse(out):
            if a:
                return out[0][0], None
            if b:
                return None, parse(out[0])[1]
            return parse(out[0])[0], parse(out[1])[1]
        first, second = parse(make())
        """
    )
    start = time.perf_counter()
    assert s.origins("first", cst.Name, 0)
    assert time.perf_counter() - start < 5
