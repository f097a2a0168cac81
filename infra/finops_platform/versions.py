"""Every chart and platform version the program deploys, pinned here and nowhere else."""

# 1.35, not 1.34: 1.34 leaves EKS standard support on 2026-12-02, and with upgradePolicy STANDARD
# EKS then upgrades the control plane itself, under the stack's feet. Karpenter 1.14 supports
# 1.35; Kubecost 3.2.1's README lists 1.29-1.34 as tested (README, "Configuration").
KUBERNETES_VERSION = "1.35"

KARPENTER_CHART = "oci://public.ecr.aws/karpenter/karpenter"
KARPENTER_CRD_CHART = "oci://public.ecr.aws/karpenter/karpenter-crd"
KARPENTER_VERSION = "1.14.1"

KUBE_PROMETHEUS_STACK_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_CHART = "kube-prometheus-stack"
KUBE_PROMETHEUS_STACK_VERSION = "88.5.3"

KUBECOST_REPO = "https://kubecost.github.io/kubecost"
KUBECOST_CHART = "kubecost"
KUBECOST_VERSION = "3.2.1"

# The EKS-optimized Amazon Linux 2023 AMI release that Karpenter's nodes boot. Pinned, because
# "@latest" replaces every node whenever AWS publishes an AMI. The README shows how to look up the
# current release before `pulumi up`.
AMI_ALIAS = "al2023@v20261020"

# The images the program runs besides its own (the gateway and the load generator, built from the
# root Dockerfile or given by the stack): a stack may name others in `images`.
DEMO_SERVICE_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.52"
VALKEY_IMAGE = "valkey/valkey:8.1.3-alpine"
