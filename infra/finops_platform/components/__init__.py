"""One ComponentResource per concern: network, cluster, karpenter, observability, kubecost,
images, the managed store and the workloads."""
