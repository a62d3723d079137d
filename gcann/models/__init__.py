"""Generator and discriminator networks: the DCGAN image family and the voxel 3D-GAN."""
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_weights_init

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "dcgan_weights_init"]
