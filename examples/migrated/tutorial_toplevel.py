# A tutorial-style script: everything at module level, running loss printed every few batches.
import runtime as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)

x = torch.randn(512, 8)
y = (x @ torch.linspace(-1, 1, 8)).unsqueeze(1) + 0.1 * torch.randn(512, 1)
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))
criterion = nn.MSELoss()


# loop over the dataset several times
class LitModel(L.LightningModule):
    """The training loop of this script as a LightningModule (migrated by torch-scaffold)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def on_train_epoch_start(self):
        self.running_loss = 0.0

    def training_step(self, batch, batch_idx):
        epoch = self.current_epoch
        i = batch_idx
        data = batch
        # get the inputs; data is a list of [inputs, labels]
        inputs, labels = data
        # zero the parameter gradients

        # forward + backward + optimize
        outputs = self.model(inputs)
        loss = criterion(outputs, labels)

        # print statistics
        self.running_loss += loss.item()
        if i % 5 == 4:
            print(f"[{epoch + 1}, {i + 1:5d}] loss: {self.running_loss / 5:.3f}")
            self.running_loss = 0.0
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)


lit_model = LitModel(net)
trainer = L.Trainer(
    max_epochs=4,
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
)
trainer.fit(lit_model, loader)

print("Finished Training")
net.eval()
with torch.no_grad():
    final = criterion(net(x), y).item()
print(f"FINAL {final:.8f}")
