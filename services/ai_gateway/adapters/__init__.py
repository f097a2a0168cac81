"""Wire-format adapters: the only modules that know the OpenAI and Anthropic API shapes."""

from .anthropic import AnthropicAdapter
from .base import Adapter
from .openai import OpenAIAdapter

__all__ = ["Adapter", "AnthropicAdapter", "OpenAIAdapter"]
