"""The finops-sim Pulumi program: typed stack config, pure builders, one component per concern."""
