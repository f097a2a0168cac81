"""What the gateway, the load generator, the simulation and the Pulumi program share.

Config errors and the strict model base, the child-process harness, the cost labels and the phase
names: each defined here once instead of once per package.
"""
