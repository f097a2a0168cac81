"""finops-sim AI gateway: an OpenAI- and Anthropic-compatible gateway over simulated providers."""
