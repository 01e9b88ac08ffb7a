"""Video: the shapes world's exact metrics, spacetime patches and the video autoencoder."""
