"""One ComponentResource per concern: network, cluster, karpenter, observability, kubecost."""
