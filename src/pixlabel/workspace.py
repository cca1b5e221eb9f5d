"""A workspace directory: the label store, caches, exports, report and the config that produced them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def create(cls, root: Path | str) -> Workspace:
        ws = cls(Path(root))
        ws.root.mkdir(parents=True, exist_ok=True)
        ws.cache_dir.mkdir(exist_ok=True)
        return ws

    @property
    def db_path(self) -> Path:
        return self.root / "pixlabel.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path.resolve()}"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def labels_csv(self) -> Path:
        return self.root / "labels.csv"

    @property
    def errors_csv(self) -> Path:
        return self.root / "errors.csv"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def config_yaml(self) -> Path:
        return self.root / "config.yaml"
