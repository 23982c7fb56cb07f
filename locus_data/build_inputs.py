"""Where a build reads from: the annotation file and image folder, resolved from the command line."""

from dataclasses import dataclass
from pathlib import Path

from locus_data.errors import UserError


@dataclass
class Sources:
    """What a build reads: the annotation file, the image folder and (with --coco-root) the folder holding both."""

    annotations: Path
    """COCO-format detection file"""
    images: Path
    """folder the annotation file's ``file_name`` entries are relative to"""
    root: Path | None = None
    """--coco-root, when given: the whole tree is an input, so the output may not be in it"""

    def inputs(self) -> list[Path]:
        """The paths a build's output must stay clear of (see :func:`locus_data.outputs.check_output`)."""
        return [self.root] if self.root is not None else [self.annotations, self.images]

    @classmethod
    def from_args(cls, coco_root: str | None, annotations: str | None, images: str | None) -> "Sources":
        """Resolve ``--coco-root`` or ``--annotations`` + ``--images``; raises UserError naming what is missing."""
        if coco_root is not None:
            if annotations or images:
                raise UserError("give either --coco-root or --annotations with --images, not both")
            root = Path(coco_root)
            if not root.is_dir():
                raise UserError(f"--coco-root {root} is not a directory")
            ann, img = root / "annotations" / "instances_train2014.json", root / "train2014"
            if not ann.is_file():
                raise UserError(f"--coco-root {root} has no annotations/instances_train2014.json")
            if not img.is_dir():
                raise UserError(f"--coco-root {root} has no train2014/ image folder")
            return cls(ann, img, root)
        if not annotations or not images:
            raise UserError("give --coco-root, or both --annotations FILE and --images DIR")
        if not Path(annotations).is_file():
            raise UserError(f"--annotations {annotations} is not a file")
        if not Path(images).is_dir():
            raise UserError(f"--images {images} is not a directory")
        return cls(Path(annotations), Path(images))
