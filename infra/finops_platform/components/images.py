"""Images: build the gateway and load-generator images into ECR repositories of the stack, or
use prebuilt ones. Building needs a Docker engine where `pulumi up` runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from ..config import ImagesConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
# One Dockerfile, one target per image (they share its pinned Python base).
DOCKERFILE = REPO_ROOT / "Dockerfile"
IMAGES = ("gateway", "loadgen")


@dataclass(frozen=True)
class ImagesArgs:
    config: ImagesConfig
    cluster_name: str
    tags: dict[str, str]


class Images(pulumi.ComponentResource):
    gateway: pulumi.Output[str]
    loadgen: pulumi.Output[str]

    def __init__(self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("finops:platform:Images", name, None, opts)
        config = args.config
        if not config.build:
            assert config.gateway and config.loadgen
            self.gateway = pulumi.Output.from_input(config.gateway)
            self.loadgen = pulumi.Output.from_input(config.loadgen)
        else:
            refs = {image: self._build(name, image, args) for image in IMAGES}
            self.gateway, self.loadgen = refs["gateway"], refs["loadgen"]
        self.register_outputs({"gateway": self.gateway, "loadgen": self.loadgen})

    def _build(self, name: str, image: str, args: ImagesArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{name}-{image}",
            name=f"{args.cluster_name}/{image}",
            force_delete=True,  # destroy removes the images too: nothing left that costs money
            image_scanning_configuration={"scan_on_push": True},
            tags=args.tags,
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOptions(parent=self)
        )
        ref = pulumi.Output.concat(repository.repository_url, ":", args.config.tag)
        built = docker_build.Image(
            f"{name}-{image}",
            context=docker_build.BuildContextArgs(location=str(REPO_ROOT)),
            dockerfile=docker_build.DockerfileArgs(location=str(DOCKERFILE)),
            target=image,
            platforms=[docker_build.Platform.LINUX_AMD64],
            push=True,
            tags=[ref],
            registries=[
                docker_build.RegistryArgs(
                    address=repository.repository_url,
                    username=token.user_name,
                    password=token.password,
                )
            ],
            opts=child,
        )
        return built.ref
