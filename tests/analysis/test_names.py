import libcst as cst


def test_import_aliases_resolve_to_one_qualified_name(snippet):
    s = snippet(
        """
        import torch.nn as nn
        from torch import nn as tnn
        from torch.nn import CrossEntropyLoss as CE
        import torch.nn.functional as F
        import torch
        a = nn.CrossEntropyLoss()
        b = tnn.CrossEntropyLoss()
        c = CE()
        d = F.softmax(x)
        e = torch.nn.functional.softmax(x)
        """
    )
    qual = s.facts.qualname
    assert qual(s.find("nn.CrossEntropyLoss")) == "torch.nn.CrossEntropyLoss"
    assert qual(s.find("tnn.CrossEntropyLoss")) == "torch.nn.CrossEntropyLoss"
    assert qual(s.find("CE", cst.Name, 1)) == "torch.nn.CrossEntropyLoss"
    assert qual(s.find("F.softmax")) == "torch.nn.functional.softmax"
    assert qual(s.find("torch.nn.functional.softmax")) == "torch.nn.functional.softmax"


def test_assigned_alias_follows_to_the_import(snippet):
    s = snippet(
        """
        import numpy as np
        shuf = np.random.shuffle
        shuf(X)
        """
    )
    assert s.facts.qualname(s.find("shuf", cst.Name, 1)) == "numpy.random.shuffle"


def test_local_definition_shadows_an_import(snippet):
    s = snippet(
        """
        from sklearn.utils import shuffle
        X = shuffle(X)
        def shuffle(a):
            return a
        y = shuffle(y)
        """
    )
    qual = s.facts.qualname
    assert qual(s.find("shuffle", cst.Name, 1)) == "sklearn.utils.shuffle"
    assert qual(s.find("shuffle", cst.Name, 3)) is None


def test_function_parameter_shadows_a_module_import(snippet):
    s = snippet(
        """
        import torch.nn.functional as F
        def run(F):
            return F.softmax(x)
        """
    )
    assert s.facts.qualname(s.find("F.softmax")) is None


def test_latest_binding_before_the_use_wins(snippet):
    s = snippet(
        """
        out = model(x)
        out = F.softmax(out, dim=1)
        loss = criterion(out, y)
        """
    )
    binding = s.facts.names.binding_at("out", s.find("out", cst.Name, 3))
    assert s.code(binding.value) == "F.softmax(out, dim=1)"
    # inside the right-hand side, `out` still means the earlier value
    inner = s.facts.names.binding_at("out", s.find("out", cst.Name, 2))
    assert s.code(inner.value) == "model(x)"


def test_method_reads_module_globals_not_class_attributes(snippet):
    s = snippet(
        """
        import torch.nn as nn
        class Net(nn.Module):
            nn = None
            def forward(self, x):
                return nn.functional.relu(x)
        """
    )
    assert s.facts.qualname(s.find("nn.functional.relu")) == "torch.nn.functional.relu"
