"""Where the repository and its shared offline data are, for every test package."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EMBEDDING_MODEL = SHARED / "models" / "minilm-l6-m2v-256"
