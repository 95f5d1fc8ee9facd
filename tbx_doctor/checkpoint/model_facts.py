"""Model facts from a state dict's tensor shapes: class count, dn label book, queries, size.

Key names follow the official DINO-4scale layout (../shared/reference/): `class_embed.0.weight`
[num_classes, 256] (DINO, Deformable DETR: focal loss, no "no object" row), `class_embed.weight`
[num_classes + 1, 256] (DETR: softmax with a "no object" row), `label_enc.weight`
[dn_labelbook_size + 1, 256], `transformer.tgt_embed.weight` [num_queries, 256] (DINO) or
`query_embed.weight` [num_queries, d] (DETR, Deformable DETR).
"""

from __future__ import annotations

from dataclasses import dataclass

from tbx_doctor.checkpoint.pickle_reader import TensorInfo

_STRIP_PREFIXES = ("module.",)  # DDP-wrapped saves


@dataclass(frozen=True)
class ModelFacts:
    """What the model state dict says; `keys` lists its entries in saved order."""

    keys: tuple[str, ...] = ()
    num_classes: int | None = None
    dn_labelbook_size: int | None = None
    num_queries: int | None = None
    parameter_count: int = 0  # elements, each storage view counted once (shared heads alias)
    notes: tuple[str, ...] = ()

    def has_key(self, key: str) -> bool:
        return key in self.keys


def _rows(state: dict[str, TensorInfo], key: str) -> int | None:
    tensor = state.get(key)
    return tensor.shape[0] if tensor is not None and tensor.shape else None


def read_model_facts(model: object) -> ModelFacts:
    """Facts from a {name: TensorInfo} dict; an empty ModelFacts when there is no such dict."""
    if not isinstance(model, dict):
        return ModelFacts()
    state = {_strip(str(k)): v for k, v in model.items() if isinstance(v, TensorInfo)}
    unique = {t.identity(): t.numel for t in state.values()}
    notes: list[str] = []
    num_classes = _rows(state, "class_embed.0.weight")
    if num_classes is None:
        detr_rows = _rows(state, "class_embed.weight")
        if detr_rows is not None:
            num_classes = detr_rows - 1
            notes.append(f"class head has {detr_rows} outputs: {num_classes} classes + no-object")
    labelbook_rows = _rows(state, "label_enc.weight")
    queries = _rows(state, "transformer.tgt_embed.weight") or _rows(state, "query_embed.weight")
    return ModelFacts(
        keys=tuple(state),
        num_classes=num_classes,
        dn_labelbook_size=labelbook_rows - 1 if labelbook_rows else None,
        num_queries=queries,
        parameter_count=sum(unique.values()),
        notes=tuple(notes),
    )


def _strip(key: str) -> str:
    for prefix in _STRIP_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key
