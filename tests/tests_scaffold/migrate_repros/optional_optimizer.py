"""A second optimizer that exists only when fine-tuning (`... if fine_tune else None`) and is
stepped under `if opt is not None:` (the captioning tutorial's encoder optimizer). It once
converted into a run that failed (a None handed to the Trainer), then was refused (SCF311); now
configure_optimizers hands over the optimizers that are not None and the step gets None for the
others. The tests also run it with `fine_tune = True`."""

import torch
import torch.nn as nn

torch.manual_seed(0)
fine_tune = False
encoder, decoder = nn.Linear(3, 4), nn.Linear(4, 1)
decoder_opt = torch.optim.SGD(decoder.parameters(), lr=0.1)
encoder_opt = torch.optim.SGD(encoder.parameters(), lr=0.1) if fine_tune else None
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(16, 3), torch.randn(16, 1)), batch_size=4
)
for epoch in range(2):
    for x, y in loader:
        decoder_opt.zero_grad()
        if encoder_opt is not None:
            encoder_opt.zero_grad()
        loss = nn.functional.mse_loss(decoder(encoder(x)), y)
        loss.backward()
        decoder_opt.step()
        if encoder_opt is not None:
            encoder_opt.step()
print("FINAL", round(decoder.weight.sum().item(), 6))
