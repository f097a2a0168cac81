"""The Pulumi program. It grows one component per concern (network, cluster, Karpenter,
observability, Kubecost, workloads) in the platform issue; for now it only names the stack."""

import pulumi

pulumi.export("stack", pulumi.get_stack())
