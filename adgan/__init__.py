"""adgan's support code, grouped by concern; the design card's GAN modules (data_loader,
model, generator, discriminator, train) stay at the checkout's top level."""

from adgan import quiet

quiet.install()
