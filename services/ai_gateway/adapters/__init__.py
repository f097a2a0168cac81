"""Wire-format adapters: the only modules that know the OpenAI and Anthropic API shapes."""
