import libcst as cst

from dllint.analysis.data import UNKNOWN, named_pair


def shuffles(s):
    """(call text, kind, sorted values, seed) of every shuffle in the snippet."""
    return [(s.code(e.call), e.kind, sorted(e.values), e.seed) for e in s.facts.data.shuffles]


def test_sklearn_shuffle_through_an_alias_reorders_its_arguments_and_targets(snippet):
    s = snippet(
        """
        from sklearn.utils import shuffle as skshuffle
        X_s = skshuffle(X)
        X, y = skshuffle(X, y, random_state=0)
        """
    )
    assert shuffles(s) == [
        ("skshuffle(X)", "result", ["X_s"], None),
        ("skshuffle(X, y, random_state=0)", "result", ["X", "y"], ("literal", 0)),
    ]


def test_a_local_function_named_shuffle_is_not_the_library_function(snippet):
    s = snippet(
        """
        from sklearn.utils import shuffle
        def shuffle(a):
            return a
        X = shuffle(X)
        """
    )
    assert shuffles(s) == []


def test_one_permutation_indexing_two_values_reorders_them_together(snippet):
    s = snippet(
        """
        import numpy as np
        idx = np.random.permutation(len(X))
        X, y = X[idx], y[idx]
        """
    )
    assert shuffles(s) == [("np.random.permutation(len(X))", "index", ["X", "y"], None)]


def test_permutation_slices_and_batch_indices_follow_the_permutation(snippet):
    s = snippet(
        """
        import torch
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            batch = perm[i:i + bs].to(device)
            xb, yb = inputs[batch], targets.index_select(0, batch)
        """
    )
    [(_, kind, values, _)] = shuffles(s)
    assert kind == "index"
    assert values == ["inputs", "targets", "xb", "yb"]


def test_randperm_not_used_as_an_index_is_no_shuffle(snippet):
    s = snippet(
        """
        import torch
        noise = torch.randperm(10).float()
        """
    )
    assert shuffles(s) == []


def test_permutation_of_a_count_is_an_index_not_a_result(snippet):
    s = snippet(
        """
        import numpy as np
        n = X.shape[0]
        order = np.random.permutation(n)
        y_perm = np.random.permutation(y)
        """
    )
    assert shuffles(s) == [("np.random.permutation(y)", "result", ["y_perm"], None)]


def test_an_index_array_shuffled_in_place_carries_what_it_indexes(snippet):
    s = snippet(
        """
        import numpy as np
        indices = np.arange(len(X))
        np.random.shuffle(indices)
        X = X[indices]
        y = y[indices]
        """
    )
    assert shuffles(s) == [("np.random.shuffle(indices)", "inplace", ["X", "indices", "y"], None)]


def test_a_reseeded_global_rng_gives_both_draws_the_same_key(snippet):
    s = snippet(
        """
        import numpy as np
        np.random.seed(7)
        np.random.shuffle(X)
        np.random.seed(7)
        np.random.shuffle(y)
        np.random.shuffle(z)
        """
    )
    seeds = [seed for *_, seed in shuffles(s)]
    assert seeds == [("literal", 7), ("literal", 7), None]


def test_a_saved_and_restored_state_pairs_the_draws(snippet):
    s = snippet(
        """
        import numpy as np
        state = np.random.get_state()
        np.random.shuffle(X)
        np.random.set_state(state)
        np.random.shuffle(y)
        """
    )
    first, second = s.facts.data.shuffles
    assert first.seed is not None and first.seed == second.seed
    assert s.facts.data.same_order(first, second)


def test_a_seeding_helper_counts_as_reseeding(snippet):
    s = snippet(
        """
        import random
        import numpy as np
        def seed_all(seed):
            random.seed(seed)
            np.random.seed(seed)
        seed_all(3)
        random.shuffle(a)
        seed_all(3)
        random.shuffle(b)
        """
    )
    first, second = s.facts.data.shuffles
    assert first.seed == second.seed and first.seed is not None


def test_one_seeded_generator_drawing_twice_is_not_the_same_order(snippet):
    s = snippet(
        """
        import numpy as np
        rng = np.random.default_rng(0)
        rng.shuffle(X)
        rng.shuffle(y)
        np.random.default_rng(1).shuffle(A)
        np.random.default_rng(1).shuffle(B)
        """
    )
    x, y, a, b = s.facts.data.shuffles
    assert not s.facts.data.same_order(x, y)
    assert s.facts.data.same_order(a, b)


def test_randperm_with_an_explicit_generator_is_unknown(snippet):
    s = snippet(
        """
        import torch
        X = X[torch.randperm(n, generator=g)]
        """
    )
    assert s.facts.data.shuffles[0].seed == UNKNOWN


def test_pandas_sample_of_the_whole_frame_is_a_shuffle(snippet):
    s = snippet(
        """
        import random
        df = df.sample(frac=1, random_state=42).reset_index(drop=True)
        part = df.sample(frac=0.5)
        pick = random.sample(items, 3)
        """
    )
    assert shuffles(s) == [
        (
            "df.sample(frac=1, random_state=42)",
            "result",
            ["df"],
            ("literal", 42),
        )
    ]


def test_partners_are_named_pairs_or_values_used_together(snippet):
    s = snippet(
        """
        import numpy as np
        import torch
        np.random.shuffle(a)
        np.random.shuffle(b)
        ds = torch.utils.data.TensorDataset(torch.tensor(a).float(), torch.tensor(b))
        np.random.shuffle(train_files)
        np.random.shuffle(val_files)
        """
    )
    a, b, train, val = s.facts.data.shuffles
    assert s.facts.data.partners(a, b) == ("a", "b")
    assert s.facts.data.partners(train, val) is None


def test_named_pairs():
    assert named_pair("X_train", "y_train")
    assert named_pair("trainX", "trainY")
    assert named_pair("Xtr", "ytr")
    assert named_pair("features", "labels")
    assert named_pair("self.inputs", "self.targets")
    assert named_pair("train_images", "train_masks")
    assert not named_pair("X_train", "y_test")
    assert not named_pair("x_train", "x_test")
    assert not named_pair("train_data", "val_data")
    assert not named_pair("self.x", "other.y")


def evidence(s, text, index=0):
    node = s.find(text, cst.BaseExpression, index)
    return [(e.reason, e.frame) for e in s.facts.data.categorical_evidence(node)]


def used(s, index):
    """Evidence for the argument of the ``index``-th ``use(...)`` call."""
    calls = [c for c in s.facts.tree.nodes(cst.Call) if s.code(c.func) == "use"]
    node = calls[index].args[0].value
    return [(e.reason, e.frame) for e in s.facts.data.categorical_evidence(node)]


def test_get_dummies_flows_through_drop_split_and_values(snippet):
    s = snippet(
        """
        import pandas as pd
        from sklearn.model_selection import train_test_split
        df = pd.get_dummies(df, columns=["Sex"])
        X = df.drop("Survived", axis=1).values
        X_train, X_test, y_train, y_test = train_test_split(X, y)
        use(X_train, y_train)
        """
    )
    assert used(s, 0) == [("was built with `pd.get_dummies`", "df")]
    assert evidence(s, "y_train", 1) == []


def test_column_selection_clears_the_evidence(snippet):
    s = snippet(
        """
        import pandas as pd
        df = pd.get_dummies(df)
        use(df[num_cols], df[["Age", "Fare"]], df.select_dtypes("number"), df.iloc[:, :3])
        use(df.iloc[:100], df[:100])
        """
    )
    for text in ("df[num_cols]", 'df[["Age", "Fare"]]', 'df.select_dtypes("number")'):
        assert evidence(s, text) == []
    assert evidence(s, "df.iloc[:, :3]") == []
    assert evidence(s, "df.iloc[:100]") != []
    assert evidence(s, "df[:100]") != []


def test_label_encoded_columns_in_a_loop_and_dropping_them_again(snippet):
    s = snippet(
        """
        import pandas as pd
        from sklearn.preprocessing import LabelEncoder
        df = pd.read_csv("adult.csv")
        cat_cols = ["sex", "race"]
        le = LabelEncoder()
        for c in cat_cols:
            df[c] = le.fit_transform(df[c])
        use(df)
        use(df.drop(columns=["sex", "race"]))
        use(df.drop(cat_cols, axis=1))
        use(df.drop(columns=["sex"]))
        """
    )
    assert used(s, 0) == [("got a column filled by `LabelEncoder`", "df")]
    assert used(s, 1) == []
    assert used(s, 2) == []
    assert used(s, 3) != []


def test_mapped_target_column_dropped_before_the_fit_leaves_no_evidence(snippet):
    s = snippet(
        """
        df = load()
        df["Churn"] = df["Churn"].map({"Yes": 1, "No": 0})
        X = df.drop("Churn", axis=1)
        df["Sex"] = df["Sex"].map(lambda v: v.lower())
        use(X)
        """
    )
    assert used(s, 0) == []


def test_mutation_after_the_use_does_not_count(snippet):
    s = snippet(
        """
        df = load()
        use(df)
        df["sex"] = df["sex"].astype("category").cat.codes
        use(df)
        """
    )
    assert used(s, 0) == []
    assert used(s, 1) == [("got category codes in a column", "df")]


def test_concatenation_with_one_hot_encoder_output(snippet):
    s = snippet(
        """
        import numpy as np
        import pandas as pd
        from sklearn.preprocessing import OneHotEncoder
        enc = OneHotEncoder()
        onehot = enc.fit_transform(df[["city"]]).toarray()
        X = np.hstack([df[["age"]].values, onehot])
        Z = pd.concat([num, pd.DataFrame(onehot)], axis=1)
        W = np.hstack([df[["age"]].values, df[["income"]].values])
        use(X)
        use(Z)
        use(W)
        """
    )
    assert used(s, 0) == [("was concatenated with `OneHotEncoder` output", "X")]
    assert used(s, 1) == [("was concatenated with `OneHotEncoder` output", "Z")]
    assert used(s, 2) == []


def test_evidence_through_a_same_module_preprocessing_function(snippet):
    s = snippet(
        """
        import pandas as pd
        def preprocess(frame):
            frame = pd.get_dummies(frame)
            return frame.fillna(0)
        X = preprocess(raw)
        use(X)
        """
    )
    assert used(s, 0) == [("was built with `pd.get_dummies`", "frame")]


def test_scaler_fits_follow_the_scaler_value(snippet):
    s = snippet(
        """
        from sklearn.preprocessing import StandardScaler, MinMaxScaler
        from sklearn import preprocessing
        from sklearn.decomposition import PCA
        class Prep:
            def __init__(self):
                self.scaler = MinMaxScaler()
            def run(self, X):
                return self.scaler.fit_transform(X)
        sc = StandardScaler()
        sc.fit(A)
        PCA().fit(B)
        preprocessing.normalize(C)
        """
    )
    fits = [(s.code(f.call), f.scaler, s.code(f.data)) for f in s.facts.data.scaler_fits()]
    assert fits == [
        ("self.scaler.fit_transform(X)", "MinMaxScaler", "X"),
        ("sc.fit(A)", "StandardScaler", "A"),
        ("preprocessing.normalize(C)", "normalize", "C"),
    ]


def test_a_single_replacement_to_an_integer_is_cleaning_not_encoding(snippet):
    s = snippet(
        """
        df = load()
        df["bare_nuclei"] = df["bare_nuclei"].replace({"?": 0})
        df["unit"] = df["unit"].map({"mm": 0.001, "m": 1.0})
        use(df)
        df["smoker"] = df["smoker"].replace({"yes": 1, "no": 0})
        use(df)
        """
    )
    assert used(s, 0) == []
    assert used(s, 1) == [("got a column mapped to integer codes with `.replace`", "df")]


def test_np_c_with_one_hot_output(snippet):
    s = snippet(
        """
        import numpy as np
        from sklearn.preprocessing import OneHotEncoder
        oh = OneHotEncoder(sparse_output=False).fit_transform(cats)
        full = np.c_[nums, oh]
        use(full)
        """
    )
    assert used(s, 0) == [("was concatenated with `OneHotEncoder` output", "full")]


def test_reindex_with_a_permutation_reorders_the_frame(snippet):
    s = snippet(
        """
        import numpy as np
        df = df.reindex(np.random.permutation(df.index))
        """
    )
    assert shuffles(s) == [("np.random.permutation(df.index)", "index", ["df"], None)]
