"""The AWS resource types that the remote components (the awsx VPC, the pulumi-eks cluster)
create as children, read from the installed packages.

Their implementations run in the awsx and eks plugins (Node.js programs that `pulumi` downloads),
which are not installed here; the Python SDKs are generated from the plugins' schemas, so they
name the children the schemas name:
- output properties typed with an AWS resource class (``'pulumi_aws.ec2.Route'``);
- AWS input types passed through to a child (``pulumi_aws.eks.AccessPolicyAssociationAccessScope
  Args`` -> ``aws.eks.AccessPolicyAssociation``), and the docs' ``aws.iam.RolePolicyAttachment``;
- the eks package's own types and components named after an ``aws.eks`` resource
  (``AccessEntryArgs`` -> ``aws.eks.AccessEntry``, the ``Addon`` component -> ``aws.eks.Addon``).
A child that the schema never mentions is not in this list.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pulumi_awsx
import pulumi_eks

from aws_taggable import resource_classes

AWS_REFERENCE = re.compile(r"(?<![A-Za-z0-9])(?:pulumi_)?aws\.([a-z0-9]+)\.([A-Z][A-Za-z0-9]*)")
EKS_OWN_TYPE = re.compile(r"^class ([A-Z][A-Za-z0-9]*?)(?:ArgsDict|Args)?\(", re.MULTILINE)
COMPONENT_SOURCES = {
    "awsx:ec2:Vpc": (Path(pulumi_awsx.__file__).parent / "ec2" / "vpc.py",),
    "eks:index:Cluster": tuple(Path(pulumi_eks.__file__).parent.glob("*.py")),
}


def _classes_by_module() -> dict[str, dict[str, str]]:
    """``ec2`` -> {class name -> type token}, over the whole pulumi_aws registry."""
    by_module: dict[str, dict[str, str]] = {}
    for token, (module, name) in resource_classes().items():
        by_module.setdefault(module.removeprefix("pulumi_aws."), {})[name] = token
    return by_module


def _resource_of(classes: dict[str, str], name: str) -> str | None:
    """The resource a class or input-type name belongs to: the longest class name prefixing it."""
    owners = [c for c in classes if name == c or (name.startswith(c) and name.endswith("Args"))]
    return classes[max(owners, key=len)] if owners else None


@cache
def child_types(component: str) -> frozenset[str]:
    by_module = _classes_by_module()
    found = set()
    for path in COMPONENT_SOURCES[component]:
        text = path.read_text(encoding="utf-8")
        for module, name in AWS_REFERENCE.findall(text):
            token = _resource_of(by_module.get(module, {}), name.removesuffix("Dict"))
            if token:
                found.add(token)
        if component == "eks:index:Cluster":
            for name in EKS_OWN_TYPE.findall(text):
                token = by_module["eks"].get(name)
                if token:
                    found.add(token)
    return frozenset(found)
