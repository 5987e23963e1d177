import libcst as cst
import pytest

from dllint.analysis.shapes import Shapes


def kinds(s, *texts):
    """The shape kind of the last occurrence of each expression text."""
    shapes = Shapes(s.facts)
    found = []
    for text in texts:
        nodes = [
            node
            for node in sorted(s.facts.tree.order, key=s.facts.tree.order.__getitem__)
            if isinstance(node, cst.BaseExpression) and s.code(node) == text
        ]
        assert nodes, f"{text!r} not found"
        found.append(shapes.kind(nodes[-1]))
    return found


def evidence(s, text):
    node = s.find(text, cst.BaseExpression, 1)
    shape = Shapes(s.facts).of(node)
    return s.code(shape.evidence), shape.from_model


def test_one_unit_linear_head_is_a_column_and_its_squeeze_is_flat(snippet):
    s = snippet(
        """
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 1)
            def forward(self, x):
                return self.fc(x)
        model = Net()
        out = model(x)
        use(out, out.squeeze(1), out.squeeze(), out.view(-1), out[:, 0])
        """
    )
    assert kinds(s, "out", "out.squeeze(1)", "out.squeeze()", "out.view(-1)", "out[:, 0]") == [
        "column",
        "flat",
        None,
        "flat",
        "flat",
    ]
    assert evidence(s, "out") == ("nn.Linear(64, 1)", True)


def test_sequential_head_with_activation_and_out_features_from_the_constructor(snippet):
    s = snippet(
        """
        from torch import nn
        seq = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
        class Reg(nn.Module):
            def __init__(self, n_in, out_dim=1):
                super().__init__()
                self.head = nn.Linear(in_features=n_in, out_features=out_dim)
            def forward(self, x):
                return self.head(x)
        reg = Reg(8)
        multi = nn.Sequential(nn.Linear(8, 10))
        use(seq(x), reg(x), multi(x))
        """
    )
    assert kinds(s, "seq(x)", "reg(x)", "multi(x)") == ["column", "column", "matrix"]


def test_constructor_sites_that_disagree_leave_the_head_unknown(snippet):
    s = snippet(
        """
        from torch import nn
        class Reg(nn.Module):
            def __init__(self, out_dim):
                super().__init__()
                self.head = nn.Linear(4, out_dim)
            def forward(self, x):
                return self.head(x)
        a = Reg(1)
        b = Reg(3)
        use(a(x))
        """
    )
    assert kinds(s, "a(x)") == [None]


def test_linear_after_a_recurrent_layer_is_not_a_column(snippet):
    s = snippet(
        """
        from torch import nn
        class Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.GRU(8, 32, batch_first=True)
                self.proj = nn.Linear(32, 1)
            def forward(self, x):
                out, _ = self.rnn(x)
                return self.proj(out), self.proj(out[:, -1, :])
        model = Seq()
        every, last = model(x)
        emb = nn.Sequential(nn.Embedding(100, 16), nn.Linear(16, 1))
        use(every, last, emb(tokens))
        """
    )
    assert kinds(s, "every", "last", "emb(tokens)") == [None, "column", None]


@pytest.mark.parametrize(
    "expr, kind",
    [
        ("torch.randn(n)", "flat"),
        ("torch.randn(n, 1)", "column"),
        ("torch.randn(n, 5)", "matrix"),
        ("torch.zeros(shape)", None),
        ("torch.randint(0, 2, (n,))", "flat"),
        ("torch.randint(0, 2, (n,)).float()", "flat"),
        ("torch.tensor([0.5, 1.5, 2.0])", "flat"),
        ("torch.tensor([[0.5], [1.5]])", "column"),
        ("torch.arange(10)", "flat"),
        ("torch.randn(n).unsqueeze(1)", "column"),
        ("torch.randn(n)[:, None]", "column"),
        ("torch.randn(n).view(-1, 1)", "column"),
        ("torch.randn(n, 1).squeeze(1)", "flat"),
        ("torch.randn(n, 1).squeeze(0)", None),
        ("torch.randn(n, 4).mean(dim=1)", "flat"),
        ("torch.randn(n, 4).sum(1, keepdim=True)", "column"),
        ("torch.randn(n, 4).max(dim=1)[0]", "flat"),
        ("torch.randn(n, 4).max(dim=1).values", "flat"),
        ("torch.randn(n).mean()", "scalar"),
        ("torch.randn(n, 4)[:, 0]", "flat"),
        ("torch.randn(n, 4)[:, -1:]", "column"),
        ("torch.randn(n)[:100].to(device)", "flat"),
        ("(torch.randn(n) - 3.0) / 2.0", "flat"),
        ("unknown.unsqueeze(1)", "column"),
        ("unknown[:, 0]", None),
        ("unknown.mean(dim=1)", None),
        ("unknown.view(n)", None),
    ],
)
def test_tensor_factories_and_reshapes(snippet, expr, kind):
    s = snippet(
        f"""
        import torch
        n = 100
        use({expr})
        """
    )
    assert kinds(s, expr) == [kind]


def test_pandas_series_frames_and_splits(snippet):
    s = snippet(
        """
        import pandas as pd
        import torch
        from sklearn.model_selection import train_test_split
        df = pd.read_csv("data.csv").dropna()
        X = df.drop(columns=["y"])
        y = df["y"]
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)
        a = df["y"].values
        b = df[["y"]].values
        c = df.iloc[:, -1].to_numpy()
        d = torch.tensor(y_train.values)
        e = X_train.values
        f = df["y"].values.reshape(-1, 1)
        use(a, b, c, d, e, f, other["y"].values)
        """
    )
    assert kinds(s, "a", "b", "c", "d", "e", "f", 'other["y"].values') == [
        "flat",
        "column",
        "flat",
        "flat",
        "matrix",
        "column",
        None,
    ]


def test_batches_of_a_tensor_dataset_keep_the_rank_of_its_tensors(snippet):
    s = snippet(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset, random_split
        X = torch.randn(100, 3)
        y = torch.randn(100)
        ds = TensorDataset(X, y, y.unsqueeze(1))
        train, val = random_split(ds, [80, 20])
        loader = DataLoader(train, batch_size=8, shuffle=True)
        for i, (xb, yb, yc) in enumerate(loader):
            use(xb, yb, yc)
        for batch in DataLoader(ds, batch_size=8, collate_fn=collate):
            xs, ys, _ = batch
            use(ys)
        """
    )
    assert kinds(s, "xb", "yb", "yc", "ys") == ["matrix", "flat", "column", None]


def test_batches_of_an_in_module_dataset_class(snippet):
    s = snippet(
        """
        import torch
        from torch.utils.data import DataLoader, Dataset
        class DS(Dataset):
            def __init__(self):
                self.x = torch.randn(100, 3)
                self.y = torch.randn(100)
            def __getitem__(self, idx):
                return self.x[idx], self.y[idx]
        for xb, yb in DataLoader(DS(), batch_size=4):
            use(yb)
        """
    )
    assert kinds(s, "yb") == ["flat"]


def test_loader_from_another_module_is_unknown(snippet):
    s = snippet(
        """
        from data import loader
        for xb, yb in loader:
            use(yb)
        """
    )
    assert kinds(s, "yb") == [None]


def test_values_with_several_origins_must_agree(snippet):
    s = snippet(
        """
        import torch
        def loss(t):
            return use(t)
        loss(torch.randn(10))
        loss(torch.randn(10, 1))
        def same(t):
            return use(t)
        same(torch.randn(10))
        same(torch.arange(10))
        """
    )
    shapes = Shapes(s.facts)
    assert shapes.kind(s.find("t", cst.Name, 1)) is None  # flat at one call, column at the other
    assert shapes.kind(s.find("t", cst.Name, 3)) == "flat"


def test_int_value_follows_names_and_constructor_arguments(snippet):
    s = snippet(
        """
        from torch import nn
        OUT = 1
        class M(nn.Module):
            def __init__(self, k):
                self.fc = nn.Linear(8, k)
        m = M(k=OUT)
        """
    )
    k = s.find("k", cst.Name, 1)  # the k in nn.Linear(8, k)
    assert Shapes(s.facts).int_value(k) == 1


def test_a_tensor_reshaped_in_place_is_unknown(snippet):
    s = snippet(
        """
        import numpy as np
        import torch
        y = torch.randn(100)
        y.unsqueeze_(1)
        a = np.zeros(100)
        a.shape = (-1, 1)
        b = y
        use(y, a, b)
        """
    )
    assert kinds(s, "y", "a", "b") == [None, None, None]
