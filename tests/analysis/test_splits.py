from dllint.analysis.splits import splits_of


def test_fits_splits_and_statistic_scalings(snippet):
    s = snippet(
        """
        import numpy as np
        from sklearn.impute import SimpleImputer
        from sklearn.model_selection import KFold, train_test_split
        from sklearn.preprocessing import LabelEncoder
        imp = SimpleImputer()
        A = imp.fit_transform(X)
        y = LabelEncoder().fit_transform(y)
        B = (A - np.mean(A)) / A.std()
        parts = train_test_split(B, y)
        for tr, te in KFold(3).split(A):
            pass
        """
    )
    splits = splits_of(s.facts)
    assert [(f.kind, s.code(f.data)) for f in splits.fits] == [("SimpleImputer", "X")]
    assert [s.code(a) for sp in splits.splits for a in sp.arrays] == ["B", "y", "A"]
    assert [(s.code(a.value), n) for a, n in splits.statistic_scalings()] == [
        ("(A - np.mean(A)) / A.std()", "A")
    ]
