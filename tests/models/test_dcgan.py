import lightning as L
import torch

from genbench.data import build_datamodule
from genbench.models import build_model, model_class
from genbench.runs.callbacks import StopAtIteration


def _fit(model, dm, iterations, tmp_path):
    trainer = L.Trainer(max_epochs=-1, callbacks=[StopAtIteration(iterations)], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(model, datamodule=dm)
    return trainer


def test_dcgan_fits_a_few_steps_and_samples(tmp_path):
    L.seed_everything(0)
    dm = build_datamodule("imagenet-scenes-tiny", n_per_class=4, batch_size=8)
    model = build_model("dcgan", image_size=64, channels=3, g_width=8, d_width=8)
    before = [p.detach().clone() for p in model.generator.parameters()]
    trainer = _fit(model, dm, 3, tmp_path)
    assert model.iteration == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))
    samples = model.sample(10, batch_size=4)
    assert samples.shape == (10, 3, 64, 64) and samples.min() >= -1 and samples.max() <= 1
    assert model.training  # sample() restores the mode
    path = tmp_path / "dcgan.ckpt"
    trainer.save_checkpoint(path)
    restored = model_class("dcgan").load_from_checkpoint(path, weights_only=False)
    assert restored.iteration == 3
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        assert torch.equal(a, b)


def test_dcgan_other_sizes():
    for size, channels in ((32, 3), (28, 1)):
        model = build_model("dcgan", image_size=size, channels=channels, g_width=8, d_width=8)
        assert model.sample(3).shape == (3, channels, size, size)
