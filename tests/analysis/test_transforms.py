import libcst as cst

from dllint.analysis.transforms import eval_word, transforms_of


def names(s, steps):
    return [step.name if step is not None else None for step in steps]


def test_compose_is_followed_through_names_and_list_concatenation(snippet):
    s = snippet(
        """
        import torchvision.transforms as T
        base = [T.Resize(256), T.CenterCrop(224)]
        aug = T.Compose(base + [T.RandomHorizontalFlip(), T.ToTensor(), my_step])
        tf = aug
        use(tf)
        """
    )
    tr = transforms_of(s.facts)
    steps = tr.steps(s.find("tf", cst.Name, index=1))
    assert names(s, steps) == ["Resize", "CenterCrop", "RandomHorizontalFlip", "ToTensor", None]
    assert [tr.is_random(st) for st in steps[:4]] == [False, False, True, False]
    # an unknown step after ToTensor: the range is not known
    assert tr.scales_to_unit(steps) is None


def test_scaling_steps(snippet):
    s = snippet(
        """
        import torch
        from torchvision.transforms import v2
        a = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(m, sd)])
        b = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32)])
        c = v2.Compose([v2.PILToTensor(), v2.ConvertImageDtype(torch.float)])
        """
    )
    tr = transforms_of(s.facts)
    scaled = [tr.scales_to_unit(tr.steps(s.find(n, index=0))) for n in "abc"]
    assert [st.name if st else None for st in scaled] == ["ToDtype", None, "ConvertImageDtype"]


def test_a_loader_batch_leads_to_the_dataset_item(snippet):
    s = snippet(
        """
        from torch.utils.data import DataLoader, Dataset
        class Pairs(Dataset):
            def __init__(self, files, transform=None):
                self.transform = transform
            def __getitem__(self, i):
                label = 0
                return label, self.transform(load(i))
        ds = Pairs(files, transform=tf)
        for i, (y, x) in enumerate(DataLoader(ds)):
            x
        """
    )
    tr = transforms_of(s.facts)
    [(made, item)] = tr.sample_item_source(s.find("x", cst.Name, index=1))
    assert made.item == 1 and item == 1 and s.code(made.transform) == "tf"


def test_eval_words():
    assert all(eval_word(w) for w in ("val", "Test", "valset", "testloader", "holdout"))
    assert not any(eval_word(w) for w in ("train", "value", "testing_", "interval"))
