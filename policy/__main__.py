"""The finops-guardrails policy pack: `pulumi preview --policy-pack policy`.

Stack-aware rules are registered twice: mandatory, checking only the optimized stack, and
advisory, checking the others, so the demo's "before" state previews with warnings.
"""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from finops_rules import RULES, stack_of


def _policy(name, description, check, level, stacks):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        stack = stack_of(args.urn)
        if stacks(stack):
            for message in check(args.resource_type, args.props, stack):
                report_violation(message)

    return ResourceValidationPolicy(
        name=name, description=description, enforcement_level=level, validate=validate
    )


policies = []
for name, (description, check, scope) in RULES.items():
    if scope == "all":
        policies.append(
            _policy(name, description, check, EnforcementLevel.MANDATORY, lambda _stack: True)
        )
    else:
        policies.append(
            _policy(
                name,
                description,
                check,
                EnforcementLevel.MANDATORY,
                lambda s, scope=scope: s == scope,
            )
        )
        policies.append(
            _policy(
                f"{name}-advisory",
                description,
                check,
                EnforcementLevel.ADVISORY,
                lambda s, scope=scope: s != scope,
            )
        )

PolicyPack(
    name="finops-guardrails", enforcement_level=EnforcementLevel.MANDATORY, policies=policies
)
