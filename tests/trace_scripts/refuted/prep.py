"""Target preparation shared by the project's trainers."""


def standardize_(targets):
    """Standardize in place, and make the targets a column like the model's output."""
    targets.sub_(targets.mean()).div_(targets.std())
    targets.unsqueeze_(1)
