"""Transcriptions of the (α_D, α_G)-GAN authors' code (SankarLab/AlphaGan-Papers-Results), the tests'
independent truth for the source form of the losses and of the ring study."""
import torch


class SourceAlphaLoss(torch.nn.Module):
    """Transcribed from SankarLab/AlphaGan-Papers-Results, ``gan.py`` (``AlphaLoss``), with the mean over the
    batch left out (``reduction``-free) so each sample's value and gradient can be compared."""

    def __init__(self, alpha, ep=1e-7):
        super().__init__()
        self.alpha, self.ep = alpha, ep
        self.sigmoid, self.bce = torch.nn.Sigmoid(), torch.nn.BCELoss(reduction="none")

    def forward(self, logits, labels):
        if self.alpha == 1:
            return self.bce(self.sigmoid(logits), labels)
        output = torch.clamp(self.sigmoid(logits), min=self.ep, max=1 - self.ep)
        A = self.alpha / (self.alpha - 1)
        real_term = A * (1 - labels * (output ** (1 / A)))
        fake_term = -A * ((1 - labels) * (1 - output) ** (1 / A))
        return real_term + fake_term
