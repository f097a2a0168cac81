"""The Pulumi program: `pulumi up --stack unoptimized|optimized`. It only wires things together;
the components live in finops_platform/components and the logic in finops_platform/builders."""

import pulumi

from finops_common.config import ConfigError
from finops_platform.program import build, grafana_password, load_config

try:
    config = load_config()
except ConfigError as error:
    raise pulumi.RunError(f"invalid stack config:\n{error}") from None

for key, value in build(config, grafana_password()).items():
    pulumi.export(key, value)
