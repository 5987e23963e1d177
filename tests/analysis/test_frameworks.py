"""Arguments a framework passes to the hooks it calls: Lightning callbacks' pl_module."""

import libcst as cst

SOURCE = """
import lightning as L
import torch.nn as nn

class Lit(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.1))

class Probe(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        pl_module(1)

    def on_validation_epoch_end(self, trainer, pl_module):
        pl_module(2)

class Unused(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        pl_module(3)

model = Lit()
trainer = L.Trainer(callbacks=[Probe()])
trainer.fit(model, None)
"""


def origins_of_call(s, text):
    call = s.find(text, cst.Call)
    values = s.facts.values
    return [(s.code(v.node), v.path) for v in values.origins(call.func)]


def test_a_training_hook_gets_the_fitted_module(snippet):
    s = snippet(SOURCE)
    assert origins_of_call(s, "pl_module(1)") == [("Lit()", ())]


def test_validation_hooks_and_callbacks_no_trainer_gets_stay_unbound(snippet):
    s = snippet(SOURCE)
    assert origins_of_call(s, "pl_module(2)") == [("pl_module", ())]
    assert origins_of_call(s, "pl_module(3)") == [("pl_module", ())]
