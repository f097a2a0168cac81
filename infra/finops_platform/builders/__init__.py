"""Pure functions from the typed stack config to specs, Helm values and IAM documents."""
