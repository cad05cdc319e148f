"""Prop-firm settings (``Settings.propfirm``): the rule pack the live account trades under.

A plain pydantic model below ``nq_ray.config`` in the layering, so it cannot import ``nq_ray.propfirm``; it
checks the pack's name against the pack files themselves (bundled ``nq_ray/propfirm/packs/*.yaml`` and
``packs_dir``), whose names are their file names. ``nq_ray.propfirm.packs.load_pack`` validates the content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

BUNDLED_PACKS_DIR = Path(__file__).resolve().parents[1] / "propfirm" / "packs"
_SUFFIXES = (".yaml", ".yml")


def pack_names(packs_dir: Path | None = None) -> list[str]:
    """The names of the bundled packs and of those in ``packs_dir`` (file names without .yaml), sorted."""
    names: set[str] = set()
    for folder in (BUNDLED_PACKS_DIR, packs_dir.expanduser() if packs_dir else None):
        if folder is not None and folder.is_dir():
            names.update(p.stem for p in folder.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    return sorted(names)


class PropFirmSettings(BaseModel):
    """Which prop-firm rule pack the live account trades under (None: no pack) and where user packs live."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    pack: str | None = Field(
        default=None,
        description="active rule pack for the live account, e.g. topstep-50k; unset = no pack",
    )
    packs_dir: Path | None = Field(
        default=None, description="a directory of user rule packs (<name>.yaml), besides the bundled ones"
    )

    @model_validator(mode="after")
    def _known_pack(self) -> Self:
        if self.packs_dir is not None and not self.packs_dir.expanduser().is_dir():
            raise ValueError(f"packs_dir {self.packs_dir} is not a directory")
        if self.pack is not None and self.pack not in (known := pack_names(self.packs_dir)):
            raise ValueError(
                f"unknown prop-firm pack {self.pack!r}; known packs: {', '.join(known)} "
                "(or add <name>.yaml to propfirm.packs_dir)"
            )
        return self
