"""The product: the eight checks of every (host, arch, accelerator) cell. `pytest --pyargs archmatrix.scenarios`."""
