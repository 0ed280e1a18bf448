"""Stage 1, the model: load a model file or a torch.export program, capture its layer chain, train the built-ins."""
