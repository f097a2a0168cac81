"""Storage: the cluster's default StorageClass (encrypted gp3 on the EBS CSI driver).

EKS 1.30 and later mark no StorageClass as default, so every claim that names none (Kubecost's,
Prometheus's, Valkey's) would stay Pending without this one. ``reclaimPolicy: Delete`` makes the
driver delete a claim's EBS volume when the claim goes; the volumes carry the cost tags.
"""

from __future__ import annotations

from typing import Any

EBS_CSI_DRIVER = "ebs.csi.aws.com"
EBS_CSI_ADDON = "aws-ebs-csi-driver"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_POLICY = "service-role/AmazonEBSCSIDriverPolicy"
DEFAULT_CLASS = "gp3"


def default_storage_class(tags: dict[str, str]) -> dict[str, Any]:
    """The default class; ``tagSpecification_N`` puts the cost tags on every volume it makes."""
    tag_parameters = {
        f"tagSpecification_{i}": f"{key}={value}"
        for i, (key, value) in enumerate(sorted(tags.items()), start=1)
    }
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": DEFAULT_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": EBS_CSI_DRIVER,
        "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4", **tag_parameters},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }
