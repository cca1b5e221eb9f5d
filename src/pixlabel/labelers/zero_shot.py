"""Zero-shot labels from class names: cosine similarity between image and prompt embeddings (CLIP).

Each class gets several prompts ("a photo of a cat.", "a blurry photo of a cat.", aliases, user prompts);
their text embeddings are averaged and re-normalised into one class embedding — the prompt ensemble of
Radford et al. 2021, which beats any single prompt.

>>> prompts = class_prompts(["cat", "dog"], aliases={"cat": ["kitty"]})
>>> labeler = ZeroShotLabeler(load_open_clip("ViT-B-32", pretrained="ckpt.bin"), prompts)  # doctest: +SKIP
>>> labeler.predict_proba(image_embeddings).shape  # doctest: +SKIP
(N, 2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from scipy.special import softmax

from pixlabel.errors import InputError
from pixlabel.labelers.protocol import Pool

# A few of CLIP's ImageNet templates: generic photo conditions that help on most image folders.
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a close-up photo of a {}.",
    "a bright photo of a {}.",
    "a dark photo of a {}.",
    "a cropped photo of a {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
    "a black and white photo of a {}.",
    "a good photo of a {}.",
)


class TextEncoder(Protocol):
    """What the labeler needs from a model: ``OpenClipModel`` is one."""

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:  # (T, D) unit rows
        ...


def _readable(name: str) -> str:
    # folder-style names ("golden_retriever") read better to a text encoder as words
    return name.replace("_", " ").strip()


def _check_strings(values: object, what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise InputError(f"{what}: expected a non-empty list of strings, got {values!r:.120}")
    bad = [v for v in values if not isinstance(v, str) or not v.strip()]
    if bad:
        raise InputError(f"{what}: expected non-empty strings, got {bad[0]!r}")
    return [v.strip() for v in values]


def class_prompts(
    classes: Sequence[str], *, templates: Sequence[str] = DEFAULT_TEMPLATES,
    aliases: Mapping[str, Sequence[str]] | None = None, extra: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """Prompts per class: every template filled with the class name and each of its ``aliases``, plus the
    ``extra`` prompts verbatim (e.g. from :func:`read_prompts_yaml`). Order follows ``classes``.

    >>> class_prompts(["cat"], templates=["a photo of a {}."], aliases={"cat": ["kitty"]},
    ...               extra={"cat": ["a cat asleep on a sofa."]})
    {'cat': ['a photo of a cat.', 'a photo of a kitty.', 'a cat asleep on a sofa.']}
    """
    names = _check_strings(classes, "classes")
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise InputError(f"classes: duplicate class names: {', '.join(dupes)}")
    templates = list(templates)
    for t in templates:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise InputError(f"template {t!r}: expected a string with exactly one '{{}}' for the class name")
    aliases, extra = dict(aliases or {}), dict(extra or {})
    for what, mapping in (("aliases", aliases), ("extra prompts", extra)):
        unknown = [k for k in mapping if k not in names]
        if unknown:
            raise InputError(f"{what} for unknown class {unknown[0]!r}; known: {', '.join(names)}")
    out: dict[str, list[str]] = {}
    for name in names:
        words = [_readable(name)]
        if name in aliases:
            words += _check_strings(aliases[name], f"aliases of {name!r}")
        prompts = [t.replace("{}", w) for w in words for t in templates]
        if name in extra:
            prompts += _check_strings(extra[name], f"extra prompts of {name!r}")
        if not prompts:
            raise InputError(f"class {name!r} has no prompts: give templates or extra prompts for it")
        out[name] = list(dict.fromkeys(prompts))  # an alias equal to the name must not count twice
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a repeated key: YAML would silently keep only the last list of prompts."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_prompts_yaml(path: Path | str, *, classes: Sequence[str] | None = None) -> dict[str, list[str]]:
    """A user prompts file ``{class: [prompt, ...]}`` (a single string is one prompt). With ``classes``,
    every key must be one of them.

    >>> read_prompts_yaml("prompts.yaml")  # doctest: +SKIP
    {'cat': ['a photo of a cat.', 'a tabby cat asleep.'], 'dog': ['a photo of a dog.']}
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read prompts file ({exc})") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise InputError(
            f"{path}: expected a mapping of class name to a list of prompts, e.g. 'cat: [a photo of a cat.]', "
            f"got {type(data).__name__}"
        )
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.strip():
            raise InputError(f"{path}: key {key!r} is not a class name (quote names like yes, no, 1 or null)")
        if classes is not None and key not in classes:
            raise InputError(f"{path}: key {key!r}: unknown class; known: {', '.join(classes)}")
        prompts = [value] if isinstance(value, str) else value
        if not isinstance(prompts, list) or not prompts or not all(
                isinstance(p, str) and p.strip() for p in prompts):
            raise InputError(f"{path}: key {key!r}: expected a non-empty list of prompt strings, got {value!r:.120}")
        out[key] = [p.strip() for p in prompts]
    return out


class ZeroShotLabeler:
    """Softmax over ``temperature`` × cosine(image, class embedding); the class embedding is the re-normalised
    mean of its prompt embeddings. 100 is CLIP's learned logit scale.

    Also a transductive :class:`~pixlabel.labelers.protocol.Labeler`: ``fit`` scores ``pool.embeddings``
    (which must come from the same model's image tower) and ignores the seed labels.
    """

    name = "zero_shot"

    def __init__(self, model: TextEncoder, prompts: Mapping[str, Sequence[str]], *, temperature: float = 100.0):
        if not prompts:
            raise InputError("zero-shot labeling needs at least one class with prompts")
        for cls, ps in prompts.items():
            _check_strings(ps, f"prompts of class {cls!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
                or not math.isfinite(temperature) or temperature <= 0:
            raise InputError(f"temperature must be a positive number, got {temperature!r}")
        self.model = model
        self.prompts = {str(c): list(ps) for c, ps in prompts.items()}
        self.temperature = float(temperature)

    @property
    def classes(self) -> list[str]:
        return list(self.prompts)

    def class_embeddings(self) -> np.ndarray:
        """``(K, D)`` unit rows, computed once (all prompts in one encoder call) and kept."""
        if getattr(self, "class_embeddings_", None) is None:
            flat = [p for ps in self.prompts.values() for p in ps]
            text = np.asarray(self.model.encode_texts(flat), dtype=np.float64)  # (T, D)
            if text.ndim != 2 or len(text) != len(flat):
                raise ValueError(f"encode_texts returned shape {text.shape} for {len(flat)} prompts")
            bounds = np.cumsum([0] + [len(ps) for ps in self.prompts.values()])
            means = np.stack([text[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
            self.class_embeddings_ = _unit_rows(means, "class embeddings")  # (K, D)
        return self.class_embeddings_

    def predict_proba(self, image_embeddings: np.ndarray) -> np.ndarray:
        """``(N, D)`` image embeddings (normalised here, so raw features are fine) → ``(N, K)`` probs."""
        classes = self.class_embeddings()
        x = np.asarray(image_embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != classes.shape[1]:
            raise ValueError(
                f"image embeddings must be (N, {classes.shape[1]}) from the same model, got {x.shape}")
        cos = _unit_rows(x, "image embeddings") @ classes.T  # (N, K)
        return softmax(cos * self.temperature, axis=1)

    def fit(self, pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int) -> ZeroShotLabeler:
        if n_classes != len(self.prompts):
            raise ValueError(f"{n_classes} classes but prompts for {len(self.prompts)}: {', '.join(self.prompts)}")
        self.probs_ = self.predict_proba(pool.embeddings)
        return self


def _unit_rows(x: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError(f"{what}: every row must be finite and non-zero")
    return x / norms
